"""Reading docker-compose.yml the way `docker compose` does, without Docker: YAML (anchors resolved), then
variable interpolation (``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
``${VAR?err}``, ``${VAR:+alt}``, ``${VAR+alt}``; no nesting, which the compose file deliberately avoids).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

_TOKEN = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?", re.DOTALL)


class InterpolationError(ValueError):
    pass


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None  # the fallback of :- / -, None when the reference has none


def variables_in(text: str) -> list[Variable]:
    """Every variable reference in ``text`` (``$$`` escapes excluded)."""
    found: list[Variable] = []
    for match in _TOKEN.finditer(text):
        if match.group("escaped"):
            continue
        if match.group("named"):
            found.append(Variable(match.group("named"), None))
            continue
        braced = _BRACED.fullmatch(match.group("braced"))
        if braced is None:
            raise InterpolationError(f"invalid interpolation ${{{match.group('braced')}}}")
        default = braced.group("arg") if braced.group("op") in (":-", "-") else None
        found.append(Variable(braced.group("name"), default))
    return found


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return env.get(match.group("named"), "")
        braced = _BRACED.fullmatch(match.group("braced"))
        if braced is None:
            raise InterpolationError(f"invalid interpolation ${{{match.group('braced')}}}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg") or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise InterpolationError(f"required variable {name} is missing: {arg}")
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return arg if value is not None else ""
        return value or ""

    return _TOKEN.sub(replace, text)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string (values, not keys) of a loaded compose document."""
    if isinstance(value, str):
        return interpolate_text(value, env)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_in(item)]
    return []


def load_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


def load(env: Mapping[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose document after interpolation with ``env`` (default: empty, i.e. every default applies)."""
    document: dict[str, Any] = interpolate(load_raw(path), env or {})
    return document


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=value`` lines, the subset of the .env syntax the example file uses (no quotes, no export)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{path}:{number}: not a KEY=value line: {raw!r}")
        values[name] = value
    return values


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict, whether written as a mapping or as a ``KEY=value`` list."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.partition("=") for item in raw)
        return {name: value for name, _, value in pairs}
    return {str(name): "" if value is None else str(value) for name, value in raw.items()}


@dataclass(frozen=True)
class PublishedPort:
    host_ip: str  # "" means every interface
    host_port: str
    container_port: str


def published_ports(service: Mapping[str, Any]) -> list[PublishedPort]:
    """``ports`` entries (short and long syntax) as host ip / host port / container port."""
    ports: list[PublishedPort] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.append(
                PublishedPort(
                    str(entry.get("host_ip", "")), str(entry.get("published", "")), str(entry.get("target", ""))
                )
            )
            continue
        text = str(entry).split("/")[0]
        if text.startswith("["):  # [::1]:8080:8080
            host_ip, _, rest = text[1:].partition("]:")
            host_port, _, container = rest.partition(":")
            ports.append(PublishedPort(host_ip, host_port, container))
            continue
        parts = text.split(":")
        if len(parts) == 1:
            ports.append(PublishedPort("", "", parts[0]))  # random host port on every interface
        elif len(parts) == 2:
            ports.append(PublishedPort("", parts[0], parts[1]))
        else:
            ports.append(PublishedPort(parts[0], parts[1], parts[2]))
    return ports
