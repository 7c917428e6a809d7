"""The compiled edge first: ``make compile`` copies this file to ``build/compiled/sitecustomize.py``.

Python imports ``sitecustomize`` at startup from the first ``sys.path`` entry that has one, so with
``PYTHONPATH=build/compiled`` every Python process (``python -m edge`` run from the checkout, a test's
worker, a benchmark's edge) imports the ``edge`` package from that tree: ahead of the current directory,
which ``python -m`` and ``python -c`` put before ``PYTHONPATH``, and of the editable install. Nothing else
imports differently.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType

TREE = os.path.dirname(os.path.realpath(__file__))


class CompiledEdgeFirst:
    """A meta path finder for the top-level ``edge`` package only: its submodules follow its ``__path__``."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> ModuleSpec | None:
        return PathFinder.find_spec(name, [TREE]) if name == "edge" else None


if CompiledEdgeFirst not in sys.meta_path:
    sys.meta_path.insert(0, CompiledEdgeFirst)
