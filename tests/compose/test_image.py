"""The Dockerfile: python:3.11-slim, a non-root user, dependencies only from requirements.lock (the lock
`make install` installs too; tests/compose/test_locks.py checks the locks themselves), build tools kept out
of the runtime stage.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compose.lockfiles import BUILD_LOCK, LOCK, read_lock
from tests.compose.support import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
BASE_IMAGE = "python:3.11-slim"


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
    from_lock = [args for args in installs if "-r" in args and args[args.index("-r") + 1] == LOCK.name]
    assert from_lock, f"nothing installs -r {LOCK.name}"
    from_build_lock = [args for args in installs if "-r" in args and args[args.index("-r") + 1] == BUILD_LOCK.name]
    for args in installs:
        positional = [arg for arg in args if not arg.startswith("-")]
        if args in from_lock:
            assert positional == [LOCK.name], f"pip install {args}: only the lock"
        elif args in from_build_lock:
            # Build tools (mypyc): pinned, and kept out of the runtime virtualenv.
            assert "--no-deps" in args and "--target" in args, f"pip install {args}: --no-deps --target"
            target = args[args.index("--target") + 1]
            assert not target.startswith("/opt/venv"), f"pip install {args}: build tools in the runtime venv"
            assert positional == [target, BUILD_LOCK.name], f"pip install {args}: only the build lock"
        else:
            assert "--no-deps" in args and positional == ["."], f"pip install {args}: the project, with --no-deps"
    all_instructions = [i for stage in stages for i in stage]
    copy_lock = next(i.line for i in all_instructions if i.keyword == "COPY" and LOCK.name in i.args.split())
    lock_install = next(i.line for i in all_instructions if i.keyword == "RUN" and f"-r {LOCK.name}" in i.args)
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


def test_the_build_tools_are_pinned_and_never_reach_the_runtime_stage(stages: list[list[Instruction]]) -> None:
    pins = read_lock(BUILD_LOCK).pins
    assert "mypy" in pins, "mypyc (setup.py, EDGE_MYPYC=1) comes from the build lock"
    build, runtime = stages[0], stages[-1]
    assert any("requirements-build.lock" in i.args for i in build if i.keyword == "RUN")
    assert any("EDGE_MYPYC=1" in i.args for i in build if i.keyword == "RUN"), "the image compiles the request path"
    copied = [i.args for i in runtime if i.keyword == "COPY"]
    assert copied and all("/opt/buildtools" not in args for args in copied)
