"""Read the Hasura metadata directory (config v3, metadata version 3) the way the Hasura CLI builds it.

``load_metadata(directory)`` returns the same document ``hasura metadata apply`` sends to the server
(``replace_metadata``): ``{"version": 3, "sources": [...], "actions": [...], "custom_types": {...}, ...}``
with every ``!include`` resolved. Files that do not exist are left out, as the CLI does.

``!include`` follows the CLI (``cli/internal/metadataobject/sources/yaml.go``): the value is either a YAML
``!include`` tag or a string containing ``!include`` that splits on one space into exactly two parts; the path is
relative to the directory of the file that contains it, and included files resolve their own includes relative to
themselves. The CLI resolves includes only in the source and remote-schema files, so the same is done here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
METADATA_DIR = REPO_ROOT / "hasura" / "metadata"

INCLUDE_TAG = "!include"

# Top-level metadata key -> file, in the order of the CLI's metadata objects. ``actions.yaml`` feeds two keys.
METADATA_FILES: dict[str, str] = {
    "sources": "databases/databases.yaml",
    "actions": "actions.yaml",
    "custom_types": "actions.yaml",
    "remote_schemas": "remote_schemas.yaml",
    "query_collections": "query_collections.yaml",
    "allowlist": "allow_list.yaml",
    "cron_triggers": "cron_triggers.yaml",
    "api_limits": "api_limits.yaml",
    "rest_endpoints": "rest_endpoints.yaml",
    "inherited_roles": "inherited_roles.yaml",
    "graphql_schema_introspection": "graphql_schema_introspection.yaml",
    "network": "network.yaml",
    "backend_configs": "backend_configs.yaml",
    "metrics_config": "metrics_config.yaml",
    "opentelemetry": "opentelemetry.yaml",
}
_FILES_WITH_INCLUDES = {"databases/databases.yaml", "remote_schemas.yaml"}


class MetadataError(ValueError):
    """The metadata directory cannot be read the way the Hasura CLI would read it."""


@dataclass(frozen=True)
class _Include:
    path: str


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps a tagged ``!include path`` scalar as a marker to resolve later."""


def _construct_include(loader: _Loader, node: yaml.Node) -> _Include:
    if not isinstance(node, yaml.ScalarNode):
        raise MetadataError(f"found {INCLUDE_TAG} on a non-scalar node at {node.start_mark}")
    return _Include(str(loader.construct_scalar(node)))


_Loader.add_constructor(INCLUDE_TAG, _construct_include)


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)
    except FileNotFoundError:
        raise MetadataError(f"missing metadata file: {path}") from None
    except yaml.YAMLError as error:
        raise MetadataError(f"invalid YAML in {path}: {error}") from error


def _include_target(value: Any) -> str | None:
    if isinstance(value, _Include):
        return value.path
    if isinstance(value, str) and INCLUDE_TAG in value:
        parts = value.split(" ")
        if len(parts) == 2:
            return parts[1].strip('"')
    return None


def _resolve(value: Any, base_dir: Path, seen: tuple[Path, ...]) -> Any:
    target = _include_target(value)
    if target is not None:
        path = (base_dir / target).resolve()
        if path in seen:
            raise MetadataError(f"{INCLUDE_TAG} cycle: {' -> '.join(map(str, (*seen, path)))}")
        return _resolve(_read_yaml(path), path.parent, (*seen, path))
    if isinstance(value, dict):
        return {key: _resolve(item, base_dir, seen) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, base_dir, seen) for item in value]
    return value


def load_yaml_with_includes(path: Path) -> Any:
    """Load one YAML file and resolve ``!include`` relative to each including file."""
    path = path.resolve()
    return _resolve(_read_yaml(path), path.parent, (path,))


def included_files(path: Path) -> list[Path]:
    """Files pulled in by ``!include`` from ``path``, recursively, in document order."""
    found: list[Path] = []

    def walk(value: Any, base_dir: Path) -> None:
        target = _include_target(value)
        if target is not None:
            child = (base_dir / target).resolve()
            found.append(child)
            walk(_read_yaml(child), child.parent)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item, base_dir)
        elif isinstance(value, list):
            for item in value:
                walk(item, base_dir)

    path = path.resolve()
    walk(_read_yaml(path), path.parent)
    return found


def load_metadata(directory: Path = METADATA_DIR) -> dict[str, Any]:
    """The metadata document the CLI would build from ``directory``."""
    directory = Path(directory)
    version_doc = _read_yaml(directory / "version.yaml")
    if not isinstance(version_doc, dict) or "version" not in version_doc:
        raise MetadataError(f"{directory / 'version.yaml'} has no 'version' key")
    metadata: dict[str, Any] = {"version": version_doc["version"]}
    for key, filename in METADATA_FILES.items():
        path = directory / filename
        if not path.is_file():
            continue
        content = load_yaml_with_includes(path) if filename in _FILES_WITH_INCLUDES else _read_yaml(path)
        if filename == "actions.yaml":
            content = (content or {}).get(key)
            if content is None:
                continue
        metadata[key] = content
    return metadata


def load_actions_sdl(directory: Path = METADATA_DIR) -> str:
    """The action signatures and custom types (``actions.graphql``); empty when the file is missing."""
    path = Path(directory) / "actions.graphql"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


# --- Queries over a loaded metadata document -------------------------------------------------------------


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str

    @classmethod
    def from_metadata(cls, value: Any) -> TableRef:
        if isinstance(value, str):
            return cls("public", value)
        if isinstance(value, Mapping):
            return cls(str(value.get("schema", "public")), str(value["name"]))
        raise MetadataError(f"not a table reference: {value!r}")

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def source(metadata: Mapping[str, Any], name: str = "default") -> dict[str, Any]:
    for entry in metadata.get("sources", []):
        if entry.get("name") == name:
            return dict(entry)
    raise MetadataError(f"no source named {name!r}")


def iter_tables(metadata: Mapping[str, Any], source_name: str = "default") -> Iterator[tuple[TableRef, dict[str, Any]]]:
    """(table, table metadata) for every tracked table of a source."""
    for entry in source(metadata, source_name).get("tables") or []:
        yield TableRef.from_metadata(entry["table"]), entry


def select_permission_limits(
    metadata: Mapping[str, Any], source_name: str = "default"
) -> dict[TableRef, dict[str, int | None]]:
    """For each table, role -> select permission ``limit`` (None when the permission sets no limit)."""
    limits: dict[TableRef, dict[str, int | None]] = {}
    for table, entry in iter_tables(metadata, source_name):
        for permission in entry.get("select_permissions") or []:
            limit = permission["permission"].get("limit")
            limits.setdefault(table, {})[permission["role"]] = None if limit is None else int(limit)
    return limits


def roles(metadata: Mapping[str, Any]) -> set[str]:
    """Every role named by a table permission or an action permission."""
    found: set[str] = set()
    for entry in metadata.get("sources", []):
        for table in entry.get("tables") or []:
            for kind in ("insert_permissions", "select_permissions", "update_permissions", "delete_permissions"):
                found.update(permission["role"] for permission in table.get(kind) or [])
    for action in metadata.get("actions") or []:
        found.update(permission["role"] for permission in action.get("permissions") or [])
    return found
