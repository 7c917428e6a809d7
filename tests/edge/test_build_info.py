"""Which build runs: compiled modules next to their sources (an installed wheel), the compiled tree that
``make compile`` builds (build/compiled/edge), and the files an edit has made stale in each."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge.build_info import COMPILED_TREE, checkout_package, compiled_modules, stale_compiled_modules


def make(package: Path, name: str, mtime: float, content: str = "") -> Path:
    path = package / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    os.utime(path, (mtime, mtime))
    return path


def test_a_source_edited_after_its_module_was_compiled_is_stale(tmp_path: Path) -> None:
    make(tmp_path, "fresh.py", 1_000)
    make(tmp_path, "fresh.cpython-311-x86_64-linux-gnu.so", 2_000)
    edited = make(tmp_path, "pipeline/edited.py", 3_000)
    make(tmp_path, "pipeline/edited.cpython-311-x86_64-linux-gnu.so", 2_000)
    make(tmp_path, "plain.py", 3_000)  # never compiled: runs as Python, nothing to warn about
    make(tmp_path, "native__mypyc.cpython-311-x86_64-linux-gnu.so", 1_000)  # mypyc's shared library
    assert [path.name for path in compiled_modules(tmp_path)] == [
        "fresh.cpython-311-x86_64-linux-gnu.so",
        "edited.cpython-311-x86_64-linux-gnu.so",
    ]
    assert stale_compiled_modules(tmp_path) == [edited]


def test_an_uncompiled_checkout_has_nothing_stale(tmp_path: Path) -> None:
    make(tmp_path, "graphql_http.py", 1_000)
    assert compiled_modules(tmp_path) == [] and stale_compiled_modules(tmp_path) == []
    assert checkout_package(tmp_path) is None


def built_checkout(root: Path) -> tuple[Path, Path]:
    """A checkout's edge/ and the tree make compile builds from it: the files copied, a .so per compiled module."""
    source = root / "edge"
    make(source, "__init__.py", 1_000)
    make(source, "graphql_http.py", 1_000, "compiled = 1\n")
    make(source, "app.py", 1_000, "app = 1\n")
    make(source, "db/migrations/0001.sql", 1_000, "create table t ();\n")
    make(source, "__pycache__/app.cpython-311.pyc", 1_000, "bytecode")
    built = root / COMPILED_TREE / "edge"
    shutil.copytree(source, built, ignore=shutil.ignore_patterns("__pycache__"))
    make(built, "graphql_http.cpython-311-x86_64-linux-gnu.so", 2_000)
    make(built, "native__mypyc.cpython-311-x86_64-linux-gnu.so", 2_000)
    return source, built


def test_the_compiled_tree_is_built_from_the_checkout_around_it(tmp_path: Path) -> None:
    source, built = built_checkout(tmp_path)
    assert checkout_package(built) == source
    assert checkout_package(source) is None
    assert [path.name for path in compiled_modules(built)] == ["graphql_http.cpython-311-x86_64-linux-gnu.so"]
    assert stale_compiled_modules(built) == []


def test_every_file_that_differs_from_the_checkout_makes_the_compiled_tree_stale(tmp_path: Path) -> None:
    source, built = built_checkout(tmp_path)
    make(source, "app.py", 500, "app = 2\n")  # an interpreted module edited: the tree's copy is the old code
    make(source, "graphql_http.py", 1_000, "compiled = 2\n")  # a compiled one, its time unchanged
    make(source, "db/migrations/0001.sql", 1_000, "create table u ();\n")
    make(source, "pipeline/new_stage.py", 1_000)  # added to the checkout: missing from the tree
    (source / "__init__.py").unlink()  # removed from the checkout: still importable from the tree
    make(source, "db/migrations/notes.txt", 1_000)  # not a module, not copied by the build: not counted
    make(source, "__pycache__/other.cpython-311.pyc", 3_000)
    assert stale_compiled_modules(built) == [
        built / "__init__.py",
        built / "app.py",
        built / "db/migrations/0001.sql",
        built / "graphql_http.py",
        built / "pipeline/new_stage.py",
    ]


def test_a_source_saved_again_unchanged_leaves_the_compiled_tree_current(tmp_path: Path) -> None:
    source, built = built_checkout(tmp_path)
    make(source, "graphql_http.py", 9_000, "compiled = 1\n")
    assert stale_compiled_modules(built) == []
