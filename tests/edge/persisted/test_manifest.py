"""Building, loading and checking the persisted-operations manifest (Apollo's format)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphql import FragmentDefinitionNode, parse, print_ast

from edge.graphql.manifest import (
    Manifest,
    ManifestEntry,
    ManifestError,
    build_from_graphql_files,
    build_from_query_collections,
)
from tests.edge.persisted.conftest import sha

REPO = Path(__file__).resolve().parents[3]
QUERY_COLLECTIONS = REPO / "hasura" / "metadata" / "query_collections.yaml"

FRAGMENTS = """
# Shared by several operations in other files.
fragment ProductFields on products { id name ...Price }
fragment Price on products { price currency }
fragment OrderFields on orders { id status }
"""
PRODUCTS = """
query ListProducts($limit: Int = 20) {
  products(limit: $limit) { ...ProductFields }
}

query ProductNames { products { name } }
"""
ORDERS = """
query MyOrders { orders { ...OrderFields items { product { ...ProductFields } } } }
mutation CancelOrder($id: uuid!) {
  update_orders_by_pk(pk_columns: {id: $id}, _set: {status: "cancelled"}) { ...OrderFields }
}
"""


@pytest.fixture
def graphql_dir(tmp_path: Path) -> Path:
    (tmp_path / "fragments.graphql").write_text(FRAGMENTS)
    (tmp_path / "products.graphql").write_text(PRODUCTS)
    nested = tmp_path / "orders"
    nested.mkdir()
    (nested / "orders.gql").write_text(ORDERS)
    (tmp_path / "README.md").write_text("not a document")
    return tmp_path


def by_name(manifest: Manifest) -> dict[str, ManifestEntry]:
    return {entry.name or "": entry for entry in manifest}


def test_every_operation_becomes_one_entry_with_only_the_fragments_it_uses(graphql_dir: Path) -> None:
    manifest = build_from_graphql_files([graphql_dir])
    entries = by_name(manifest)
    assert sorted(entries) == ["CancelOrder", "ListProducts", "MyOrders", "ProductNames"]
    assert [entry.type for entry in manifest] == ["mutation", "query", "query", "query"]

    def fragments(entry: ManifestEntry) -> list[str]:
        return [d.name.value for d in parse(entry.body).definitions if isinstance(d, FragmentDefinitionNode)]

    assert fragments(entries["ListProducts"]) == ["Price", "ProductFields"]  # transitive, sorted by name
    assert fragments(entries["ProductNames"]) == []
    assert fragments(entries["MyOrders"]) == ["OrderFields", "Price", "ProductFields"]
    assert fragments(entries["CancelOrder"]) == ["OrderFields"]
    assert entries["ListProducts"].body.startswith("query ListProducts($limit: Int = 20) {\n  products(limit: $limit)")


def test_bodies_are_canonical_and_ids_are_their_sha256(graphql_dir: Path) -> None:
    manifest = build_from_graphql_files([graphql_dir])
    for entry in manifest:
        assert entry.id == sha(entry.body)
        assert print_ast(parse(entry.body)) == entry.body
        assert "#" not in entry.body
    assert manifest.problems() == []
    assert manifest.ids == {entry.id for entry in manifest}
    assert manifest.normalised_ids == manifest.ids  # canonical bodies normalise to themselves


def test_ids_do_not_depend_on_formatting_file_order_or_comments(graphql_dir: Path, tmp_path: Path) -> None:
    first = build_from_graphql_files([graphql_dir])
    other = tmp_path / "reformatted"
    other.mkdir()
    (other / "a.graphql").write_text("# all in one file, differently spaced\n" + ORDERS.replace(" ", "  ") + PRODUCTS)
    (other / "z.graphql").write_text(FRAGMENTS.replace("\n", "\n\n"))
    second = build_from_graphql_files([other / "z.graphql", other / "a.graphql"])
    assert first.to_json() == second.to_json()
    assert build_from_graphql_files([graphql_dir]).to_json() == first.to_json()  # stable


def test_json_round_trip_in_apollo_format(graphql_dir: Path) -> None:
    manifest = build_from_graphql_files([graphql_dir])
    text = manifest.to_json()
    data = json.loads(text)
    assert data["format"] == "apollo-persisted-query-manifest" and data["version"] == 1
    assert list(data["operations"][0]) == ["id", "name", "type", "body"]
    loaded = Manifest.from_json(text)
    assert loaded.entries == manifest.entries
    assert loaded.to_json() == text


def test_from_file_refuses_a_tampered_entry(graphql_dir: Path, tmp_path: Path) -> None:
    data = json.loads(build_from_graphql_files([graphql_dir]).to_json())
    data["operations"][1]["body"] = "mutation Evil { delete_orders(where: {}) { affected_rows } }"
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="id is not the sha256 of its body"):
        Manifest.from_file(path)
    assert len(Manifest.from_file(path, verify=False).problems()) == 2  # ListProducts: id mismatch, and not a query


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"format": "other", "version": 1, "operations": []}, "'format'"),
        ({"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}, "'version'"),
        ({"format": "apollo-persisted-query-manifest", "version": 1, "operations": {}}, "'operations'"),
        ({"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id": "x"}]}, "needs string"),
    ],
)
def test_malformed_manifests_are_refused(data: object, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(json.dumps(data))


def test_building_from_hasuras_query_collections() -> None:
    manifest = build_from_query_collections(QUERY_COLLECTIONS)
    entries = by_name(manifest)
    assert sorted(entries) == [
        "CreateOrder",
        "DocumentHistory",
        "ListProducts",
        "MyDocuments",
        "MyOrders",
        "ProcessPayment",
        "ProductById",
        "UpdateDocument",
    ]
    assert {entries[name].type for name in ("CreateOrder", "ProcessPayment", "UpdateDocument")} == {"mutation"}
    assert manifest.problems() == []
    assert Manifest.from_json(manifest.to_json()).entries == manifest.entries


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.graphql": "query A { ...Missing }"}, "fragment 'Missing' is used but not defined"),
        ({"a.graphql": "query A { x", "b.graphql": "query B { y }"}, "a.graphql"),
        ({"a.graphql": "query A { x }", "b.graphql": "query A { y }"}, "operation 'A' is defined twice"),
        ({"a.graphql": "fragment F on T { x }", "b.graphql": "fragment F on T { y }"}, "fragment 'F' is defined twice"),
        (
            {"a.graphql": "query A { ...F } fragment F on T { ...G } fragment G on T { ...F }"},
            "cycle",
        ),
    ],
)
def test_invalid_sources_are_refused_with_the_file_named(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ManifestError, match=message):
        build_from_graphql_files([tmp_path])


def test_missing_paths_and_empty_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        build_from_graphql_files([tmp_path / "absent"])
    with pytest.raises(ManifestError, match="no .graphql files"):
        build_from_graphql_files([tmp_path])


def test_malformed_query_collections_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "query_collections.yaml"
    path.write_text("- name: c\n  definition:\n    queries:\n      - name: q\n")
    with pytest.raises(ManifestError, match="'name' and 'query'"):
        build_from_query_collections(path)
    path.write_text("name: not-a-list\n")
    with pytest.raises(ManifestError, match="must be a list"):
        build_from_query_collections(path)
