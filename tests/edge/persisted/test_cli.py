"""``python -m edge manifest``: build and check, with exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

from edge.graphql.manifest import Manifest
from edge.manifest_cli import main
from tests.edge.persisted.test_manifest import FRAGMENTS, ORDERS, PRODUCTS, QUERY_COLLECTIONS


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_build_from_graphql_files_writes_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "fragments.graphql").write_text(FRAGMENTS)
    (tmp_path / "products.graphql").write_text(PRODUCTS)
    (tmp_path / "orders.graphql").write_text(ORDERS)
    output = tmp_path / "manifest.json"
    code, out, err = run("manifest", "build", "--from-graphql", str(tmp_path / "products.graphql"), str(tmp_path),
                         "-o", str(output))  # fmt: skip
    assert (code, out) == (0, "")
    assert err == f"wrote 4 operation(s) to {output}\n"
    assert len(Manifest.from_file(output)) == 4


def test_build_from_query_collections_to_standard_output() -> None:
    code, out, err = run("build", "--from-query-collections", str(QUERY_COLLECTIONS))
    assert code == 0
    assert len(json.loads(out)["operations"]) == 8
    assert err == "8 operation(s)\n"


def test_check_accepts_a_built_manifest_and_detects_a_tampered_one(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    assert run("build", "--from-query-collections", str(QUERY_COLLECTIONS), "-o", str(path))[0] == 0
    assert run("check", str(path)) == (0, f"{path}: ok, 8 operation(s)\n", "")

    data = json.loads(path.read_text())
    data["operations"][3]["body"] = data["operations"][3]["body"].replace("id", "password_hash", 1)
    path.write_text(json.dumps(data))
    code, out, err = run("check", str(path))
    assert (code, out) == (2, "")
    assert "id is not the sha256 of its body" in err and "1 problem(s)" in err


def test_usage_and_input_errors_exit_2(tmp_path: Path) -> None:
    assert run()[0] == 2
    assert run("build")[0] == 2  # a source is required
    assert run("build", "--from-graphql", "a", "--from-query-collections", "b")[0] == 2
    code, _, err = run("build", "--from-graphql", str(tmp_path / "absent"))
    assert code == 2 and "no such file or directory" in err
    (tmp_path / "fragments.graphql").write_text("fragment F on T { x }")
    code, _, err = run("build", "--from-graphql", str(tmp_path))
    assert (code, err) == (2, "error: no operations found\n")
    code, _, err = run("check", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot be read" in err
    (tmp_path / "bad.json").write_text("{")
    assert run("check", str(tmp_path / "bad.json"))[0] == 2


def test_help_exits_0() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "build" in out and "check" in out
