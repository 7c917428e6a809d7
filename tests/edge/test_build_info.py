"""Which build runs: compiled modules next to their sources, and the ones an edit has made stale."""

from __future__ import annotations

import os
from pathlib import Path

from edge.build_info import compiled_modules, stale_compiled_modules


def make(package: Path, name: str, mtime: float) -> Path:
    path = package / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
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
