"""Mutation testing of the modules whose tests are held to it (run as `make mutation`).

For each module in ``TARGETS``, mutmut (the dev extra) makes every small change it knows to the module's code
(a ``<`` becomes ``<=``, a constant changes, a call's argument goes, ...) and runs the module's own
tests against each such mutant: a mutant that no test fails on *survived*, i.e. that change of
behaviour goes unnoticed. The score printed per module is surviving mutants / all mutants, where
surviving also counts the mutants that no listed test even reaches.

Each module is measured alone, with only the tests listed for it, in a fresh copy of the work tree
under ``build/mutation/<module>/`` (the files git tracks or would track, so never a compiled ``.so``
that would shadow a mutated source): nothing is cached from an earlier run and the tree itself is not
written to. Exit status 1 when a module is not under ``MAX_SURVIVING``; ``--show`` lists the survivors
(``mutmut show NAME`` in that module's directory shows one as a diff).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
WORK_DIR = REPO_ROOT / "build" / "mutation"
MAX_SURVIVING = 0.10


@dataclass(frozen=True)
class Target:
    module: str
    tests: tuple[str, ...]


TARGETS = (
    Target("edge/limits/gcra.py", ("tests/edge/limits/test_gcra.py",)),
    Target("edge/auth/claims.py", ("tests/edge/auth/test_claims.py",)),
    Target(
        "edge/pipeline/inject_session.py",
        ("tests/edge/pipeline/test_inject_session.py", "tests/edge/test_trust_boundary.py"),
    ),
)

SETUP_CFG = """\
[mutmut]
source_paths = edge
only_mutate = {module}
also_copy =
{also_copy}
pytest_add_cli_args_test_selection =
{tests}
"""


def tree_files() -> list[Path]:
    """The work tree's files as git sees them: tracked or untracked-but-not-ignored, present on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [Path(name) for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


def stage(target: Target, files: list[Path]) -> Path:
    workdir = WORK_DIR / Path(target.module).stem
    shutil.rmtree(workdir, ignore_errors=True)
    for name in files:
        destination = workdir / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, destination)
    # mutmut reads pyproject.toml's [tool.mutmut] first, else setup.cfg: the project keeps none in pyproject.
    # mutmut runs the tests in its copy, workdir/mutants/: the rest of the tree (Hasura's metadata, seeds, ...) too.
    tops = sorted({name.parts[0] for name in files} - {"edge", "tests"})
    (workdir / "setup.cfg").write_text(
        SETUP_CFG.format(
            module=target.module,
            tests="\n".join(f"    {test}" for test in target.tests),
            also_copy="\n".join(f"    {top}" for top in tops),
        )
    )
    return workdir


@dataclass(frozen=True)
class Score:
    module: str
    total: int
    killed: int
    survived: int
    no_tests: int
    timeout: int
    other: int

    @property
    def surviving(self) -> int:
        return self.survived + self.no_tests

    @property
    def fraction(self) -> float:
        return self.surviving / self.total if self.total else 0.0


def measure(target: Target, files: list[Path], mutmut: Path) -> tuple[Score, list[str]]:
    workdir = stage(target, files)
    subprocess.run([str(mutmut), "run"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(mutmut), "export-cicd-stats"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    stats = json.loads((workdir / "mutants" / "mutmut-cicd-stats.json").read_text())
    results = subprocess.run(
        [str(mutmut), "results"], cwd=workdir, check=True, capture_output=True, text=True
    ).stdout.split("\n")
    not_killed = [line.strip() for line in results if line.strip()]
    counted = stats["killed"] + stats["survived"] + stats["no_tests"] + stats["timeout"]
    score = Score(
        module=target.module,
        total=stats["total"],
        killed=stats["killed"],
        survived=stats["survived"],
        no_tests=stats["no_tests"],
        timeout=stats["timeout"],
        other=stats["total"] - counted,
    )
    return score, not_killed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="only these modules (paths as in TARGETS)")
    parser.add_argument("--show", action="store_true", help="list the mutants that were not killed")
    args = parser.parse_args()
    targets = [t for t in TARGETS if not args.modules or t.module in args.modules]
    if not targets:
        sys.stderr.write(f"no such module; choose among: {', '.join(t.module for t in TARGETS)}\n")
        return 2
    mutmut = Path(sys.executable).parent / "mutmut"
    if not mutmut.exists():
        sys.stderr.write(f"{mutmut} not found: mutmut comes with the dev extra (make install)\n")
        return 2
    files = tree_files()
    failed = False
    lines = []
    for target in targets:
        score, not_killed = measure(target, files, mutmut)
        over = score.fraction >= MAX_SURVIVING
        failed |= over
        lines.append(
            f"{score.module}: {score.surviving}/{score.total} surviving ({score.fraction:.1%}): "
            f"{score.killed} killed, {score.timeout} timed out, {score.survived} survived, "
            f"{score.no_tests} reached by no test"
            + (f", {score.other} other (suspicious, segfault, skipped)" if score.other else "")
            + (f"  NOT UNDER {MAX_SURVIVING:.0%}" if over else "")
        )
        if args.show:
            lines.extend(f"    {line}" for line in not_killed)
        sys.stdout.write(lines[-1] + "\n")
    sys.stdout.write("\nmutation testing, surviving mutants per module:\n" + "\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
