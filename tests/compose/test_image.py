"""The Dockerfile and requirements.lock: python:3.11-slim, a non-root user, dependencies only from the lock,
and a lock that pins (==) every runtime dependency pyproject.toml declares, with everything they pull in.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.compose.support import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
LOCK = REPO_ROOT / "requirements.lock"
BUILD_LOCK = REPO_ROOT / "requirements-build.lock"
PYPROJECT = REPO_ROOT / "pyproject.toml"
BASE_IMAGE = "python:3.11-slim"
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


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(path: Path = DOCKERFILE) -> list[list[Instruction]]:
    """Instructions grouped by build stage (continuation lines joined, comments dropped)."""
    stages: list[list[Instruction]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are removed by Docker
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, args = text.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"{path}:{start}: instruction before FROM"
        stages[-1].append(instruction)
    assert not pending, f"{path}: ends inside a continued line"
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile()


def _runs(stage: list[Instruction]) -> list[str]:
    return [i.args for i in stage if i.keyword == "RUN"]


def _pip_installs(command: str) -> list[list[str]]:
    """The argument lists of every `pip install` in a RUN command (split on && and ;)."""
    installs = []
    for part in re.split(r"&&|;|\|\|", command):
        words = shlex.split(part)
        for index in range(len(words) - 1):
            if words[index].endswith("pip") and words[index + 1] == "install":
                installs.append(words[index + 2 :])
                break
            if words[index : index + 3] == ["-m", "pip", "install"]:
                installs.append(words[index + 3 :])
                break
    return installs


# --- Dockerfile --------------------------------------------------------------------------------------------


def test_every_stage_is_python_311_slim(stages: list[list[Instruction]]) -> None:
    for stage in stages:
        image = stage[0].args.split()[0]
        assert image == BASE_IMAGE, f"line {stage[0].line}: FROM {image}, expected {BASE_IMAGE}"


def test_the_final_stage_runs_as_a_non_root_user(stages: list[list[Instruction]]) -> None:
    final = stages[-1]
    users = [i for i in final if i.keyword == "USER"]
    assert users, "the runtime stage has no USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), f"USER {user}"
    assert users[-1].line > max(i.line for i in final if i.keyword in ("RUN", "COPY")), "USER comes last"
    assert any(i.keyword == "CMD" for i in final)


def test_dependencies_come_only_from_the_lock(stages: list[list[Instruction]]) -> None:
    installs = [args for stage in stages for run in _runs(stage) for args in _pip_installs(run)]
    assert installs, "no pip install found"
    from_lock = [args for args in installs if "-r" in args and args[args.index("-r") + 1] == "requirements.lock"]
    assert from_lock, "nothing installs -r requirements.lock"
    from_build_lock = [args for args in installs if "-r" in args and args[args.index("-r") + 1] == BUILD_LOCK.name]
    for args in installs:
        positional = [arg for arg in args if not arg.startswith("-")]
        if args in from_lock:
            assert positional == ["requirements.lock"], f"pip install {args}: only the lock"
        elif args in from_build_lock:
            # Build tools (mypyc): pinned, and kept out of the runtime virtualenv.
            assert "--no-deps" in args and "--target" in args, f"pip install {args}: --no-deps --target"
            target = args[args.index("--target") + 1]
            assert not target.startswith("/opt/venv"), f"pip install {args}: build tools in the runtime venv"
            assert positional == [target, BUILD_LOCK.name], f"pip install {args}: only the build lock"
        else:
            assert "--no-deps" in args and positional == ["."], f"pip install {args}: the project, with --no-deps"
    all_instructions = [i for stage in stages for i in stage]
    copy_lock = next(i.line for i in all_instructions if i.keyword == "COPY" and "requirements.lock" in i.args)
    lock_install = next(i.line for i in all_instructions if i.keyword == "RUN" and "requirements.lock" in i.args)
    project_install = next(i.line for i in all_instructions if i.keyword == "RUN" and "--no-deps ." in i.args)
    assert copy_lock < lock_install < project_install


def test_the_build_context_has_what_the_dockerfile_copies(stages: list[list[Instruction]]) -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    sources = []
    for stage in stages:
        for instruction in stage:
            if instruction.keyword == "COPY" and not instruction.args.startswith("--from"):
                sources += shlex.split(instruction.args)[:-1]
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not _ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    for secret_or_bulk in (".env", ".git", ".venv", "tests", "bench", ".env.example", "edge/__pycache__"):
        assert _ignored(secret_or_bulk, patterns), f".dockerignore lets {secret_or_bulk} into the build context"


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used here: last match wins, `!` re-includes, `**/` any depth."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        if body.startswith("**/"):
            matched = any(fnmatch.fnmatchcase(part, body[3:]) for part in parts)
        else:
            matched = any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes)
        if matched:
            ignored = not negate
    return ignored


# --- requirements.lock -------------------------------------------------------------------------------------


def read_lock(path: Path = LOCK) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"{path.name}:{number}: {line!r} is not a plain name==version pin"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{path.name}:{number}: {name} pinned twice"
        pins[name] = Version(match.group(2))
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_the_lock_pins_every_runtime_dependency_within_its_specifier() -> None:
    pins = read_lock()
    for requirement in runtime_requirements():
        if requirement.marker and not requirement.marker.evaluate(TARGET_ENV):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
    assert "hasura-edge" not in pins, "the project itself is installed with --no-deps, not from the lock"


def test_the_lock_covers_the_dependency_tree() -> None:
    """Everything the runtime dependencies (with their extras) pull in is pinned too, so `pip install -r` in the
    image resolves nothing unpinned. The tree is read from this environment's installed distributions."""
    pins = read_lock()
    needed: set[tuple[str, frozenset[str]]] = set()
    # (name, extras) of requirements whose markers already held, for the parent's extras, on the target.
    queue = [
        (canonicalize_name(req.name), frozenset(req.extras))
        for req in runtime_requirements()
        if req.marker is None or req.marker.evaluate({**TARGET_ENV, "extra": ""})
    ]
    while queue:
        name, extras = queue.pop()
        if (name, extras) in needed:
            continue
        needed.add((name, extras))
        try:
            dependencies = importlib_metadata.requires(name) or []
        except importlib_metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed here; run `make install` (pip install -e '.[test,dev]')")
        for text in dependencies:
            child = Requirement(text)
            if child.marker is None or any(
                child.marker.evaluate({**TARGET_ENV, "extra": extra}) for extra in (*extras, "")
            ):
                queue.append((canonicalize_name(child.name), frozenset(child.extras)))
    assert len(needed) > len(runtime_requirements()), "the walk found no transitive dependency"
    missing = sorted({name for name, _ in needed} - set(pins))
    assert not missing, f"regenerate requirements.lock (see its header); not pinned: {missing}"


def test_the_build_tools_are_pinned_and_never_reach_the_runtime_stage(stages: list[list[Instruction]]) -> None:
    pins = read_lock(BUILD_LOCK)
    assert "mypy" in pins, "mypyc (setup.py, EDGE_MYPYC=1) comes from the build lock"
    build, runtime = stages[0], stages[-1]
    assert any("requirements-build.lock" in i.args for i in build if i.keyword == "RUN")
    assert any("EDGE_MYPYC=1" in i.args for i in build if i.keyword == "RUN"), "the image compiles the request path"
    copied = [i.args for i in runtime if i.keyword == "COPY"]
    assert copied and all("/opt/buildtools" not in args for args in copied)
