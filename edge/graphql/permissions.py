"""Row limits of Hasura select permissions, per GraphQL type and role, read from the metadata directory.

Hasura caps the rows a role reads from a table at its select permission's ``limit`` (a ceiling: a
request asking for fewer gets fewer). The cost model uses it where a list field has no ``limit``
argument, and as the ceiling of the argument when it has one.

``PermissionLimits.from_metadata_dir(path)`` reads ``databases/databases.yaml`` and the table files it
includes, the way the Hasura CLI resolves ``!include`` (a YAML ``!include`` tag, or a string
``"!include <path>"``, relative to the including file). A table's GraphQL type name is
``configuration.custom_name`` when set, otherwise ``<table>`` in schema ``public`` and
``<schema>_<table>`` elsewhere; a source's ``customization.type_names`` prefix/suffix is applied.
Reading happens once at start-up; lookups are dict gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MetadataError", "PermissionLimits", "read_metadata_file"]

INCLUDE_TAG = "!include"
MAX_INCLUDE_DEPTH = 16


class MetadataError(ValueError):
    """The metadata directory cannot be read the way the Hasura CLI would read it."""


class _Include(str):
    """A ``!include``-tagged scalar, resolved after loading."""


class _Loader(yaml.SafeLoader):
    pass


def _construct_include(loader: _Loader, node: yaml.Node) -> _Include:
    if not isinstance(node, yaml.ScalarNode):
        raise MetadataError(f"{INCLUDE_TAG} on a non-scalar node at {node.start_mark}")
    return _Include(loader.construct_scalar(node))


_Loader.add_constructor(INCLUDE_TAG, _construct_include)


def _read(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)  # a SafeLoader subclass
    except FileNotFoundError:
        raise MetadataError(f"missing metadata file: {path}") from None
    except OSError as error:
        raise MetadataError(f"cannot read {path} ({error.strerror or type(error).__name__})") from None
    except yaml.YAMLError as error:
        raise MetadataError(f"invalid YAML in {path}: {error}") from error


def read_metadata_file(path: Path) -> Any:
    """A metadata YAML file as the Hasura CLI reads it: its ``!include`` references resolved (relative to the
    file that includes them). Raises :class:`MetadataError` naming the file it could not read."""
    return _resolve(_read(path), path.resolve().parent)


def _include_target(value: Any) -> str | None:
    if isinstance(value, _Include):
        return str(value)
    if isinstance(value, str) and value.startswith(INCLUDE_TAG):
        parts = value.split(" ")
        if len(parts) == 2:
            return parts[1].strip('"')
    return None


def _resolve(value: Any, base: Path, depth: int = 0) -> Any:
    """Follow an ``!include`` (at most :data:`MAX_INCLUDE_DEPTH` deep), then the includes of list items."""
    target = _include_target(value)
    if target is not None:
        if depth >= MAX_INCLUDE_DEPTH:
            raise MetadataError(f"{INCLUDE_TAG} nested more than {MAX_INCLUDE_DEPTH} deep (a cycle?)")
        path = (base / target).resolve()
        return _resolve(_read(path), path.parent, depth + 1)
    if isinstance(value, list):
        return [_resolve(item, base, depth) for item in value]
    return value


def _type_name(table: Any, configuration: Any) -> str:
    if isinstance(configuration, Mapping) and configuration.get("custom_name"):
        return str(configuration["custom_name"])
    if isinstance(table, str):
        return table
    if not isinstance(table, Mapping) or "name" not in table:
        raise MetadataError(f"not a table reference: {table!r}")
    schema = str(table.get("schema", "public"))
    name = str(table["name"])
    return name if schema == "public" else f"{schema}_{name}"


class PermissionLimits:
    """``limit_for(type_name, role)``: the select permission's row limit, or None."""

    __slots__ = ("_limits",)

    def __init__(self, limits: Mapping[str, Mapping[str, int]]) -> None:
        """``limits``: GraphQL type name -> role -> row limit (roles without a limit are left out)."""
        self._limits: dict[str, dict[str, int]] = {name: dict(roles) for name, roles in limits.items()}

    @classmethod
    def from_metadata_dir(cls, directory: str | Path) -> PermissionLimits:
        """Raises :class:`MetadataError` for anything it cannot read, with the file it was reading."""
        databases = Path(directory) / "databases" / "databases.yaml"
        try:
            return cls._from_databases(databases)
        except MetadataError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a value of an unexpected shape
            raise MetadataError(f"{databases}: unexpected metadata ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _from_databases(cls, databases: Path) -> PermissionLimits:
        sources = read_metadata_file(databases)
        limits: dict[str, dict[str, int]] = {}
        for source in sources or []:
            if not isinstance(source, Mapping):
                raise MetadataError(f"{databases}: a source is not a mapping")
            type_names = (source.get("customization") or {}).get("type_names") or {}
            prefix, suffix = str(type_names.get("prefix") or ""), str(type_names.get("suffix") or "")
            base = databases.resolve().parent
            for entry in _resolve(source.get("tables"), base) or []:
                entry = _resolve(entry, base)
                if not isinstance(entry, Mapping):
                    raise MetadataError(f"{databases}: a table entry is not a mapping")
                name = prefix + _type_name(entry.get("table"), entry.get("configuration")) + suffix
                for permission in entry.get("select_permissions") or []:
                    limit = (permission.get("permission") or {}).get("limit")
                    if limit is not None:
                        limits.setdefault(name, {})[str(permission["role"])] = int(limit)
        return cls(limits)

    def limit_for(self, type_name: str, role: str | None) -> int | None:
        if role is None:
            return None
        roles = self._limits.get(type_name)
        return roles.get(role) if roles else None

    def roles_for(self, type_name: str) -> Mapping[str, int]:
        """Role -> limit for one type (empty when no role has a limit on it)."""
        return self._limits.get(type_name, {})

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {name: dict(roles) for name, roles in self._limits.items()}
