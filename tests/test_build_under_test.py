"""The suite runs the build it says it runs (BUILD_UNDER_TEST; tests/support/build.py), here and in the
processes it starts: the compiled run cannot pass on the interpreted code, nor the plain run on stray .so files."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from edge.build_info import compiled_modules
from tests.support.build import BUILD, COMPILED_TREE, ROOT


def compiled_module_names() -> list[str]:
    """setup.py's COMPILED_MODULES, as module names."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    assignment = next(
        node
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["COMPILED_MODULES"]
    )
    paths = ast.literal_eval(assignment.value)
    assert paths and all(path.startswith("edge/") and path.endswith(".py") for path in paths)
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def test_every_module_of_the_request_path_runs_from_the_build_under_test():
    expected_root = COMPILED_TREE if BUILD == "compiled" else ROOT
    suffix = ".so" if BUILD == "compiled" else ".py"
    for name in compiled_module_names():
        module_file = Path(str(importlib.import_module(name).__file__))
        assert module_file.is_relative_to(expected_root / "edge"), (name, module_file)
        assert module_file.suffix == suffix, (name, module_file)


def test_the_package_counts_its_compiled_modules_for_the_build():
    assert len(compiled_modules()) == (len(compiled_module_names()) if BUILD == "compiled" else 0)


def test_python_m_edge_started_from_the_checkout_runs_the_same_build():
    # As the tests start edges: the checkout as the current directory, this process's environment.
    result = subprocess.run(
        [sys.executable, "-m", "edge", "--version"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    build = f"request path compiled ({len(compiled_module_names())} modules)" if BUILD == "compiled" else "interpreted"
    assert result.stdout == f"hasura-edge {version('hasura-edge')} ({build})\n"
