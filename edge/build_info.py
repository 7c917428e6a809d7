"""Which build of the request path is running: compiled with mypyc (setup.py) or plain Python.

A checkout runs its sources as Python. ``make compile`` builds the compiled request path into a
separate tree, ``build/compiled/`` (``COMPILED_TREE``): a copy of the package with the .so files,
which runs only when it comes first on ``sys.path`` (the compiled test run, the benchmarks). After
an edit, that tree is the old code until ``make compile`` runs again: ``stale_compiled_modules``
finds the files that differ, so ``python -m edge`` can warn and the test suite can refuse to run.
An installed wheel (the Docker image) has the .so files next to the .py files it ships.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

__all__ = ["COMPILED_TREE", "checkout_package", "compiled_modules", "stale_compiled_modules"]

PACKAGE = Path(__file__).resolve().parent
COMPILED_TREE = Path("build", "compiled")
"""Where ``make compile`` builds, relative to the checkout: ``build/compiled/edge`` is the package."""

_NOT_COPIED = ("__pycache__",)


def compiled_modules(package: Path = PACKAGE) -> list[Path]:
    """The compiled extension of each module that has one (not mypyc's shared library itself)."""
    return [
        path
        for path in sorted(package.glob("**/*.cpython-*.so"))
        if path.with_name(path.name.split(".", 1)[0] + ".py").exists()
    ]


def checkout_package(package: Path = PACKAGE) -> Path | None:
    """The sources a package under ``build/compiled/`` was built from (``<checkout>/edge``); else None."""
    tree = package.parent
    if tree.parts[-len(COMPILED_TREE.parts) :] != COMPILED_TREE.parts:
        return None
    source = tree.parents[len(COMPILED_TREE.parts) - 1] / package.name
    return source if source.is_dir() else None


def _files(package: Path) -> set[Path]:
    return {
        path.relative_to(package)
        for path in package.rglob("*")
        if path.is_file()
        and not path.name.endswith((".so", ".pyc"))
        and not any(part in _NOT_COPIED for part in path.relative_to(package).parts)
    }


def stale_compiled_modules(package: Path = PACKAGE) -> list[Path]:
    """The files of this build that would run other code than the sources do, as paths in ``package``.

    For the compiled tree (``build/compiled/edge``): every file whose content differs from the
    checkout's, each module the checkout added, and each file it removed (the whole tree was built from
    the sources at one time, so one changed module makes it another program). Elsewhere (an installed
    wheel, .so files left next to a checkout's sources): each module edited after its .so was built.
    """
    source = checkout_package(package)
    if source is None:
        stale = []
        for compiled in compiled_modules(package):
            module = compiled.with_name(compiled.name.split(".", 1)[0] + ".py")
            if module.stat().st_mtime > compiled.stat().st_mtime:
                stale.append(module)
        return stale
    built, sources = _files(package), _files(source)
    changed = {path for path in built & sources if not filecmp.cmp(package / path, source / path, shallow=False)}
    added = {path for path in sources - built if path.suffix == ".py"}  # (new data files: only setup's are copied)
    return [package / path for path in sorted(changed | added | (built - sources))]
