"""Reading the lock files and the requirements they answer for.

requirements.lock pins the runtime dependencies (the Docker image installs it), requirements-build.lock the
mypyc build tools, requirements-dev.lock the test and dev extras on top of both (``-r`` lines; ``make install``
installs it). tools/lock.py writes the first and the last.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.compose.support import REPO_ROOT

LOCK = REPO_ROOT / "requirements.lock"
BUILD_LOCK = REPO_ROOT / "requirements-build.lock"
DEV_LOCK = REPO_ROOT / "requirements-dev.lock"
PYPROJECT = REPO_ROOT / "pyproject.toml"
MAKEFILE = REPO_ROOT / "Makefile"
# The image is Linux / CPython 3.11: evaluate dependency markers for that, not for the test machine.
TARGET_ENV: dict[str, str] = {
    **{key: str(value) for key, value in default_environment().items()},
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "python_version": "3.11",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)")
_INCLUDE = re.compile(r"-r (\S+)")


@dataclass(frozen=True)
class LockFile:
    path: Path
    pins: dict[NormalizedName, Version]
    includes: tuple[str, ...]  # the files named by -r lines, in order
    comments: tuple[str, ...]


def read_lock(path: Path) -> LockFile:
    """Every line is a comment, a plain name==version pin or a `-r file` include; anything else fails."""
    pins: dict[NormalizedName, Version] = {}
    includes: list[str] = []
    comments: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line)
            continue
        if include := _INCLUDE.fullmatch(line):
            includes.append(include.group(1))
            continue
        match = _PIN.fullmatch(line)
        assert match, f"{path.name}:{number}: {line!r} is not a plain name==version pin"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{path.name}:{number}: {name} pinned twice"
        pins[name] = Version(match.group(2))
    return LockFile(path, pins, tuple(includes), tuple(comments))


def resolved_pins(path: Path) -> dict[NormalizedName, Version]:
    """What `pip install -r path` pins: the file's own pins and those of every file it includes."""
    lock = read_lock(path)
    layers = [(include, resolved_pins(path.parent / include)) for include in lock.includes]
    pins: dict[NormalizedName, Version] = {}
    for source, layer in [*layers, (path.name, lock.pins)]:
        for name, version in layer.items():
            assert pins.get(name, version) == version, f"{name}: {pins[name]}, and {version} in {source}"
            pins[name] = version
    return pins


def project_requirements(*extras: str) -> list[Requirement]:
    """pyproject.toml's runtime dependencies, then those of the named extras."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def applies(requirement: Requirement, extras: frozenset[str] = frozenset()) -> bool:
    """Whether the requirement's marker holds on the image's platform, for the requester's extras."""
    marker = requirement.marker
    return marker is None or any(marker.evaluate({**TARGET_ENV, "extra": extra}) for extra in (*extras, ""))


def make_recipe(target: str, path: Path = MAKEFILE) -> list[str]:
    """The commands of a Makefile rule: continued lines joined, without the tab and without a leading @ (a
    silent command), comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"{re.escape(target)}\s*:(?!=)", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        command = line[1:].lstrip("@")
        if not command.startswith("#"):
            recipe.append(command)
    return recipe


def pip_commands(command: str) -> list[list[str]]:
    """The words after `pip` (e.g. ["install", "-r", "x"]) of each pip call in a shell command."""
    calls = []
    for part in re.split(r"&&|;|\|\|", command):
        words = shlex.split(part)
        for index, word in enumerate(words[:-1]):
            if (word == "pip" and index > 0 and words[index - 1] == "-m") or word.endswith("/pip"):
                calls.append(words[index + 1 :])
                break
    return calls
