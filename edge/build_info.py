"""Which build of the request path is running: compiled with mypyc (setup.py) or plain Python.

A checkout built with ``make compile`` has .so files next to the sources, and Python imports a
module's .so over its .py. After an edit, that .so is the old code until ``make compile`` runs
again: ``stale_compiled_modules`` finds those, so ``python -m edge`` can warn and the test suite
can refuse to run.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["compiled_modules", "stale_compiled_modules"]

PACKAGE = Path(__file__).resolve().parent


def compiled_modules(package: Path = PACKAGE) -> list[Path]:
    """The compiled extension of each module that has one (not mypyc's shared library itself)."""
    return [
        path
        for path in sorted(package.glob("**/*.cpython-*.so"))
        if path.with_name(path.name.split(".", 1)[0] + ".py").exists()
    ]


def stale_compiled_modules(package: Path = PACKAGE) -> list[Path]:
    """Sources edited after their module was compiled (their .so would run the old code)."""
    stale = []
    for compiled in compiled_modules(package):
        source = compiled.with_name(compiled.name.split(".", 1)[0] + ".py")
        if source.stat().st_mtime > compiled.stat().st_mtime:
            stale.append(source)
    return stale
