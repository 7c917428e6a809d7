"""One set of versions: requirements.lock pins (==) every runtime dependency pyproject.toml declares and
everything they pull in, the image installs exactly it (tests/compose/test_image.py), `make install`
installs it too through requirements-dev.lock (with the mypyc build tools and the test and dev extras),
pyproject.toml gives each runtime dependency a tested range, and this environment is what the locks pin.
"""

from __future__ import annotations

from datetime import datetime
from importlib import metadata as importlib_metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.compose.lockfiles import (
    BUILD_LOCK,
    DEV_LOCK,
    LOCK,
    applies,
    make_recipe,
    pip_commands,
    project_requirements,
    read_lock,
    resolved_pins,
)

DEV_EXTRAS = ("test", "dev")
# pip options whose value is the next word.
_VALUED_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-d", "--target"}


# --- layout ------------------------------------------------------------------------------------------------


def test_the_dev_lock_builds_on_the_image_lock_and_the_build_tools() -> None:
    runtime, build, dev = read_lock(LOCK), read_lock(BUILD_LOCK), read_lock(DEV_LOCK)
    assert runtime.includes == () and build.includes == ()
    assert dev.includes == (LOCK.name, BUILD_LOCK.name), "make install must install the image's pins"
    shared = set(dev.pins) & (set(runtime.pins) | set(build.pins))
    assert not shared, f"pinned again in {DEV_LOCK.name}: {sorted(shared)}"
    # One virtualenv holds all three, so a package in two of them needs one version (typing-extensions).
    assert resolved_pins(DEV_LOCK).keys() >= runtime.pins.keys() | build.pins.keys()


def test_the_generated_locks_come_from_one_resolution() -> None:
    """tools/lock.py (`make lock`) wrote both, resolving PyPI as of one recorded time."""
    stamps = {}
    for path in (LOCK, DEV_LOCK):
        comments = read_lock(path).comments
        assert any("tools/lock.py" in line for line in comments), f"{path.name}: the header names its generator"
        as_of = [line.removeprefix("# as of: ") for line in comments if line.startswith("# as of: ")]
        assert len(as_of) == 1, f"{path.name}: one '# as of:' line"
        assert datetime.fromisoformat(as_of[0]).tzinfo is not None
        stamps[path.name] = as_of[0]
    assert len(set(stamps.values())) == 1, f"regenerate both with `make lock`: {stamps}"
    assert any("tools/lock.py" in line for line in make_recipe("lock"))


# --- pyproject.toml against the locks ------------------------------------------------------------------------


def test_the_lock_pins_every_runtime_dependency_within_its_specifier() -> None:
    pins = read_lock(LOCK).pins
    for requirement in project_requirements():
        if not applies(requirement):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}; run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
    assert "hasura-edge" not in pins, "the project itself is installed with --no-deps, not from the lock"


def test_the_dev_lock_pins_every_test_and_dev_dependency_within_its_specifier() -> None:
    pins = resolved_pins(DEV_LOCK)
    for requirement in project_requirements(*DEV_EXTRAS):
        if not applies(requirement):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {DEV_LOCK.name} or what it includes; run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
    assert "hasura-edge" not in pins


def untested_range(requirement: Requirement, pinned: Version | None) -> str | None:
    """Why the requirement is no tested range, or None: it needs one lower bound, in the release series the
    lock pins (what CI and the image run), and one upper bound no further than the next major, or the next
    minor for a 0.x package: a patch release still installs, a release that may change behaviour does not
    until it is tested and locked."""
    lower = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    upper = [Version(spec.version) for spec in requirement.specifier if spec.operator == "<"]
    if len(lower) != 1 or len(upper) != 1:
        return "give it one >= and one < bound"
    floor, ceiling = lower[0], upper[0]
    major, minor = (*floor.release, 0)[:2]
    widest = Version(f"0.{minor + 1}") if major == 0 else Version(f"{major + 1}")
    if not floor < ceiling <= widest:
        return f"the upper bound must lie above the lower one and at most at {widest}"
    if pinned is not None and pinned.release[:2] != floor.release[:2]:
        return f"the lower bound is not in the series the lock tests ({pinned})"
    return None


def test_every_runtime_dependency_has_a_tested_range() -> None:
    pins = read_lock(LOCK).pins
    problems = {str(req): untested_range(req, pins.get(canonicalize_name(req.name))) for req in project_requirements()}
    problems = {text: problem for text, problem in problems.items() if problem}
    assert not problems, problems


@pytest.mark.parametrize(
    ("text", "pinned", "tested"),
    [
        ("uvicorn>=0.55.0,<0.56", "0.55.1", True),
        ("uvicorn>=0.34", "0.55.0", False),
        ("uvicorn>=0.55.0,<0.57", "0.55.0", False),
        ("uvicorn>=0.54.0,<0.56", "0.55.0", False),
        ("redis>=8.2.0,<9", "8.2.3", True),
        ("redis>=8.2.0,<10", "8.2.0", False),
        ("redis>=8.1.0,<9", "8.2.0", False),
        ("redis>=8.2.0,<8.2", "8.2.0", False),
        ("graphql-core>=3.3.2,<3.4", "3.3.2", True),
    ],
)
def test_untested_range_tells_a_tested_range_from_a_loose_one(text: str, pinned: str, tested: bool) -> None:
    assert (untested_range(Requirement(text), Version(pinned)) is None) is tested


def _closure(requirements: list[Requirement]) -> set[NormalizedName]:
    """Names of the requirements and of everything they pull in, with their extras, on the image's platform,
    read from this environment's installed distributions."""
    needed: set[tuple[NormalizedName, frozenset[str]]] = set()
    queue = [(canonicalize_name(req.name), frozenset(req.extras)) for req in requirements if applies(req)]
    while queue:
        name, extras = queue.pop()
        if (name, extras) in needed:
            continue
        needed.add((name, extras))
        try:
            dependencies = importlib_metadata.requires(name) or []
        except importlib_metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed here; run `make install`")
        for text in dependencies:
            child = Requirement(text)
            if applies(child, extras):
                queue.append((canonicalize_name(child.name), frozenset(child.extras)))
    return {name for name, _ in needed}


def test_the_lock_covers_the_runtime_dependency_tree() -> None:
    """Everything the runtime dependencies (with their extras) pull in is pinned too, so `pip install -r` in the
    image resolves nothing unpinned."""
    requirements = project_requirements()
    needed = _closure(requirements)
    assert len(needed) > len(requirements), "the walk found no transitive dependency"
    missing = sorted(needed - set(read_lock(LOCK).pins))
    assert not missing, f"regenerate {LOCK.name} with `make lock`; not pinned: {missing}"


def test_the_dev_lock_covers_the_whole_tree() -> None:
    """The test and dev extras and the mypyc build tools, with all they pull in, are pinned too."""
    build_tools = [Requirement(f"{name}=={version}") for name, version in read_lock(BUILD_LOCK).pins.items()]
    needed = _closure([*project_requirements(*DEV_EXTRAS), *build_tools])
    missing = sorted(needed - set(resolved_pins(DEV_LOCK)))
    assert not missing, f"regenerate {DEV_LOCK.name} with `make lock` (or fix {BUILD_LOCK.name}): {missing}"


# --- make install against the locks --------------------------------------------------------------------------


def _split_install(args: list[str]) -> tuple[list[str], list[str], set[str]]:
    """(requirement files, what is installed, flags) of `pip install` arguments."""
    files, targets, flags = [], [], set()
    words = iter(args)
    for word in words:
        if word in _VALUED_OPTIONS:
            value = next(words)
            if word in ("-r", "--requirement"):
                files.append(value)
            elif word in ("-e", "--editable"):
                targets.append(value)
            else:
                flags.add(f"{word} {value}")
        elif word.startswith("-"):
            flags.add(word)
        else:
            targets.append(word)
    return files, targets, flags


def test_make_install_installs_the_locks_then_the_project_without_dependencies() -> None:
    """The Dockerfile's steps: dependencies only from the lock, the project with --no-deps, then pip check."""
    calls = [call for line in make_recipe("install") for call in pip_commands(line)]
    steps = []
    for call in calls:
        if call[0] == "check":
            steps.append("check")
            continue
        if call[0] == "download":
            # A file read by the compose tests (tests/compose/compose_schema.py), never installed.
            assert "--no-deps" in call and any("==" in word for word in call), f"pip {call}: one pinned file"
            continue
        assert call[0] == "install", f"pip {call}"
        files, targets, flags = _split_install(call[1:])
        if files:
            assert files == [DEV_LOCK.name] and not targets, f"pip {call}: only {DEV_LOCK.name}"
            steps.append("lock")
        elif targets == ["."]:
            assert "--no-deps" in flags, f"pip {call}: the project comes without dependencies, all are locked"
            steps.append("project")
        else:
            assert targets == ["pip"] and "--upgrade" in flags, f"pip {call}: installs what the locks do not pin"
    assert steps == ["lock", "project", "check"], f"make install runs {steps}"


def test_no_make_target_installs_the_project_with_unlocked_dependencies() -> None:
    for target in ("install", "bench"):
        for line in make_recipe(target):
            for call in pip_commands(line):
                if call[0] != "install":
                    continue
                files, targets, flags = _split_install(call[1:])
                if any(t == "." or t.startswith(".[") for t in targets):
                    assert "--no-deps" in flags or DEV_LOCK.name in files, f"make {target}: pip {call}"


def test_the_installed_environment_is_the_lock() -> None:
    """What this suite runs with is what the locks pin; `make install` brings a .venv from before there."""
    drifted = {}
    for name, pinned in resolved_pins(DEV_LOCK).items():
        try:
            installed: Version | None = Version(importlib_metadata.version(name))
        except importlib_metadata.PackageNotFoundError:
            installed = None
        if installed != pinned:
            drifted[name] = f"{installed} installed, {pinned} pinned"
    assert not drifted, f"run `make install`: {drifted}"
