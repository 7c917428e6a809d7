"""Which build of the edge the suite runs, chosen by ``BUILD_UNDER_TEST`` before anything imports ``edge``.

``interpreted`` (the default, a plain ``pytest``): the checkout's sources. ``compiled`` (``make test``'s
second run): the tree ``make compile`` builds, ``build/compiled/``, first on this process's ``sys.path``
and on ``PYTHONPATH``, where its ``sitecustomize`` (tools/compiled_sitecustomize.py) makes every Python
process a test starts with this environment import ``edge`` from it (``python -m edge`` run from the
checkout would otherwise import the sources in the current directory).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPILED_TREE = ROOT / "build" / "compiled"  # edge.build_info.COMPILED_TREE, not imported: edge comes after this
BUILDS = ("interpreted", "compiled")
BUILD = os.environ.get("BUILD_UNDER_TEST", "") or "interpreted"


def select_build() -> str | None:
    """Put the chosen build first on the path; or the reason it cannot run."""
    if BUILD not in BUILDS:
        return f"BUILD_UNDER_TEST={BUILD!r}: expected one of {', '.join(BUILDS)}"
    in_place = sorted([*(ROOT / "edge").rglob("*.so"), *ROOT.glob("*__mypyc*.so")])
    if in_place:
        names = ", ".join(str(path.relative_to(ROOT)) for path in in_place[:3]) + (", ..." if len(in_place) > 3 else "")
        return (
            f"compiled extensions next to the sources ({names}, from an older `make compile`) would shadow them: "
            "remove them with `find edge -name '*.so' -delete` (`make compile` now builds into build/compiled/)"
        )
    on_path = [Path(entry).resolve() for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    if BUILD == "interpreted" and COMPILED_TREE in on_path:
        return "PYTHONPATH has build/compiled (the compiled build): unset it, or set BUILD_UNDER_TEST=compiled"
    if BUILD == "compiled":
        if not (COMPILED_TREE / "edge").is_dir() or not (COMPILED_TREE / "sitecustomize.py").is_file():
            return "BUILD_UNDER_TEST=compiled: no compiled build in build/compiled/: run `make compile`"
        sys.path.insert(0, str(COMPILED_TREE))
        os.environ["PYTHONPATH"] = os.pathsep.join([str(COMPILED_TREE), *filter(None, [os.environ.get("PYTHONPATH")])])
    return None


def python_environment() -> dict[str, str]:
    """The variables that choose the build, for a Python process started with an environment of its own."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
