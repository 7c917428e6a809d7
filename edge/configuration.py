"""Read the edge's settings and say what is wrong with them in the operator's words.

``load_settings()`` returns the settings, or the problems: one line each, naming the environment
variable (``EDGE_PORT: ...``) or the place in the ``EDGE_CONFIG`` file
(``/etc/edge.yaml: plans.free.rate.requests_per_second: ...``) and the reason. A key that is not a
setting gets a "did you mean" suggestion. Inputs are never repeated (they may be secrets): lines
are built from pydantic's error locations and messages only (``hide_input_in_errors`` keeps
``str(error)`` clean too). ``EDGE_*`` variables that match no setting are warnings, not errors: the
environment holds other programs' variables as well.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import SettingsError

from edge.settings import ConfigFileError, EdgeSettings, read_config_file

__all__ = [
    "LoadedSettings",
    "closest",
    "did_you_mean",
    "env_name",
    "load_settings",
    "unknown_environment_variables",
    "write_problems",
]

ENV_PREFIX = "EDGE_"
CONFIG_VARIABLE = "EDGE_CONFIG"
PROGRAM = "hasura-edge"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass
class LoadedSettings:
    """What ``load_settings`` found: ``settings`` when ``problems`` is empty."""

    settings: EdgeSettings | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    from_environment: frozenset[str] = frozenset()
    """Setting names given by ``EDGE_*`` variables."""
    from_file: frozenset[str] = frozenset()
    """Setting names given by the ``EDGE_CONFIG`` file."""
    config_path: str | None = None

    def name_of(self, setting: str) -> str:
        """Where ``setting`` was given, as a problem should name it: ``EDGE_X`` or ``<file>: x``."""
        if setting not in self.from_environment and setting in self.from_file and self.config_path is not None:
            return f"{self.config_path}: {setting}"
        return env_name(setting)


def env_name(setting: str) -> str:
    """``hasura_url`` -> ``EDGE_HASURA_URL``."""
    return ENV_PREFIX + setting.upper()


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name`` (difflib's ratio of at least 0.6), or None."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest candidate, or an empty string."""
    match = closest(name, candidates)
    return f" (did you mean {match}?)" if match else ""


def unknown_environment_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``EDGE_*`` variable that names no setting (matching is case-insensitive)."""
    known = [*EdgeSettings.model_fields, CONFIG_VARIABLE.removeprefix(ENV_PREFIX).lower()]
    warnings = []
    for variable in sorted(environ):
        name = variable.lower().removeprefix(ENV_PREFIX.lower())
        if variable.upper().startswith(ENV_PREFIX) and name not in known:
            # Compared without the shared prefix, which would make every name look alike.
            match = closest(name, known)
            suggestion = f" (did you mean {env_name(match)}?)" if match else ""
            warnings.append(f"{variable} is not a setting and is ignored{suggestion}")
    return warnings


def load_settings(environ: Mapping[str, str] | None = None) -> LoadedSettings:
    """The settings from the process environment and the ``EDGE_CONFIG`` file, or the problems found.

    ``environ`` defaults to ``os.environ``, which is what the settings are read from; pass it only to
    name variables the same way (tests).
    """
    environ = os.environ if environ is None else environ
    warnings = unknown_environment_variables(environ)
    from_environment = frozenset(
        name for name in EdgeSettings.model_fields if _environment_value(environ, env_name(name))
    )
    config_path = environ.get(CONFIG_VARIABLE) or None
    found = LoadedSettings(None, [], warnings, from_environment, config_path=config_path)
    if config_path is not None:
        try:
            found.from_file = frozenset(read_config_file(config_path))
        except ConfigFileError as exc:
            found.problems.append(str(exc))
            return found
    try:
        found.settings = EdgeSettings()  # required fields come from the environment or the file
    except ConfigFileError as exc:  # the file changed since it was read above
        found.problems.append(str(exc))
    except SettingsError as exc:
        found.problems.append(_unparsable_variable(exc))
    except ValidationError as exc:
        where = _Where(from_environment, found.from_file, config_path)
        found.problems.extend(where.describe(error) for error in exc.errors(include_url=False, include_input=False))
    return found


def write_problems(err: TextIO, problems: list[str], warnings: list[str]) -> None:
    """The warnings, then a header and one line per problem (each line names the setting)."""
    for warning in warnings:
        err.write(f"{PROGRAM}: warning: {warning}\n")
    if problems:
        err.write(f"{PROGRAM}: invalid configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n")
        for problem in problems:
            err.write(f"{PROGRAM}: {problem}\n")


def _environment_value(environ: Mapping[str, str], variable: str) -> str | None:
    # pydantic-settings matches names case-insensitively and ignores empty values (env_ignore_empty).
    for name, value in environ.items():
        if name.upper() == variable and value != "":
            return value
    return None


def _unparsable_variable(exc: SettingsError) -> str:
    # A list or mapping setting given as an environment variable is JSON; pydantic-settings reports
    # a value it cannot decode by the field's name (and never the value).
    match = re.search(r'field "([a-z0-9_]+)"', str(exc))
    if match is None:
        return f"the environment cannot be read: {exc}"
    return f"{env_name(match[1])}: not valid JSON (a list or mapping is expected)"


@dataclass(frozen=True)
class _Where:
    from_environment: frozenset[str]
    from_file: frozenset[str]
    config_path: str | None

    def describe(self, error: ErrorDetails) -> str:
        loc = tuple(error["loc"])
        reason = _reason(error)
        if not loc:  # a rule across settings: its message names them
            return reason
        setting, rest = str(loc[0]), loc[1:]
        if error["type"] == "extra_forbidden":
            candidates = _keys_at(loc[:-1])
            reason = f"unknown {'setting' if not rest else 'key'}{did_you_mean(str(loc[-1]), candidates)}"
        if setting in self.from_environment:
            if not rest and reason.startswith(env_name(setting)):
                return reason  # the validator's message names the variable already
            return f"{env_name(setting)}: {_path(rest) + ': ' if rest else ''}{reason}"
        if self.config_path is not None and setting in self.from_file:
            return f"{self.config_path}: {_path(loc)}: {reason}"
        if error["type"] == "missing":
            return f"{env_name(setting)}: required (in the environment, or as {setting} in the EDGE_CONFIG file)"
        return f"{env_name(setting)}: {reason}"


def _reason(error: ErrorDetails) -> str:
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _path(loc: Sequence[int | str]) -> str:
    """``("plans", "free", "rate")`` -> ``plans.free.rate``; list positions as ``[0]``; odd keys quoted."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if _NAME.fullmatch(part) else repr(part)
            text += f".{name}" if text else name
    return text


def _keys_at(loc: Sequence[int | str]) -> list[str]:
    """The field names of the model found at ``loc`` inside the settings (for suggestions)."""
    annotation: Any = EdgeSettings
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = _model(annotation)
    return list(model.model_fields) if model is not None else []


def _step(annotation: Any, part: int | str) -> Any:
    model = _model(annotation)
    if model is not None:
        if isinstance(part, str) and part in model.model_fields:
            return model.model_fields[part].annotation
        return None
    for member in _members(annotation):
        origin = typing.get_origin(member)
        arguments = typing.get_args(member)
        if origin in (dict, Mapping) and len(arguments) == 2:
            return arguments[1]
        if origin in (list, tuple, set, frozenset, Sequence) and arguments and isinstance(part, int):
            return arguments[0]
    return None


def _members(annotation: Any) -> tuple[Any, ...]:
    """``X | None`` -> ``(X, NoneType)``; ``Annotated[X, ...]`` -> ``(X,)``; anything else -> itself."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(member for argument in typing.get_args(annotation) for member in _members(argument))
    return (annotation,)


def _model(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None
