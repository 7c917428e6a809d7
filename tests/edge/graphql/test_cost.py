"""The cost model: Hasura's shapes from the double's schema, the repository's real permission limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema, introspection_from_schema

from edge.graphql.analysis import Analyser
from edge.graphql.cost import MAX_COST, CostModel
from edge.graphql.permissions import MetadataError, PermissionLimits
from edge.graphql.schema_info import SchemaInfo
from tests.hasura_double.schema import DEMO_SDL
from tests.support.hasura_metadata import load_metadata, select_permission_limits

TOKENS = 15_000
INSERT_THREE = "mutation { insert_users(objects: [{}, {}, {}]) { affected_rows returning { id } } }"
PAY = 'processPayment(orderId: "o", amount: "1", currency: "EUR", idempotencyKey: "k") { paymentId status }'

# query, variables, role, expected cost. Permission limits (hasura/metadata): users user:1; orders, order_items,
# payments, documents user:100; products, inventory, warehouses anonymous:50 user:100.
SCHEMA_CASES: list[tuple[str, dict[str, Any] | None, str | None, int]] = [
    # list fields: rows x (1 + children); scalars are free
    ("{ users(limit: 10) { id orders { id } } }", None, None, 10 * (1 + 100)),
    ("{ users(limit: 10) { id orders { id } } }", None, "user", 1 * (1 + 100)),
    ("{ users(limit: 10) { id orders { id } } }", None, "anonymous", 10 * (1 + 100)),
    ("{ users { id } }", None, None, 100),
    ("{ users { id } }", None, "user", 1),
    ("{ products { id } }", None, "anonymous", 50),
    ("{ products(limit: 20) { id } }", None, "anonymous", 20),
    ("{ products(limit: 99999999) { id } }", None, None, 99_999_999),
    ("{ products(limit: 99999999) { id } }", None, "anonymous", 50),
    ("{ products(limit: 0) { id } }", None, None, 0),
    # variables, their defaults, and values Hasura would refuse
    ("query($n: Int) { users(limit: $n) { id } }", {"n": 5}, None, 5),
    ("query($n: Int) { users(limit: $n) { id } }", {}, None, 100),
    ("query($n: Int) { users(limit: $n) { id } }", {"n": 5}, "user", 1),
    ("query($n: Int = 7) { products(limit: $n) { id } }", {}, None, 7),
    ("query($n: Int = 7) { products(limit: $n) { id } }", {"n": 500}, "anonymous", 50),
    ("query($n: Int) { products(limit: $n) { id } }", {"n": "lots"}, "anonymous", 50),
    # object relationships and _by_pk: one row
    ('{ users_by_pk(id: "x") { id orders(limit: 3) { id } } }', None, None, 1 + 3),
    ("{ orders(limit: 2) { user { id } items(limit: 4) { product { id } } } }", None, None, 2 * (1 + 1 + 4 * 2)),
    # aggregates: a fixed price plus their nodes
    ("{ products_aggregate { aggregate { count max { price } } } }", None, None, 10),
    (
        "{ products_aggregate(limit: 5) { aggregate { count } nodes { id inventory(limit: 2) { id } } } }",
        None,
        None,
        25,
    ),
    ("{ products_aggregate { nodes { id } } }", None, None, 10 + 100),
    ("{ products_aggregate { nodes { id } } }", None, "anonymous", 10 + 50),
    ("{ users(limit: 2) { orders_aggregate { aggregate { count } } } }", None, None, 2 * (1 + 10)),
    # mutations: a base cost per root field, returning priced by the number of objects inserted
    (INSERT_THREE, None, None, 10 + 1 + 3),
    (
        "mutation($rows: [users_insert_input!]!) { insert_users(objects: $rows) { returning { id } } }",
        {"rows": [{}, {}]},
        None,
        13,
    ),
    ("mutation { insert_users_one(object: {}) { id } }", None, None, 11),
    ("mutation { update_users(where: {}) { returning { id } } }", None, None, 10 + 1 + 100),
    ('mutation { delete_users_by_pk(id: "x") { id } }', None, None, 11),
    (f"mutation {{ {PAY} }}", None, None, 11),
    (f"mutation {{ a: {PAY} b: {PAY} }}", None, None, 22),
    # subscriptions: the cost of one result
    ("subscription { users_stream(batch_size: 10, cursor: []) { id } }", None, None, 10),
    ("subscription { users_stream(batch_size: 10, cursor: []) { id } }", None, "user", 1),
    ("subscription { orders(limit: 5) { id } }", None, None, 5),
    # introspection: one per object; __typename is a scalar
    ("{ __schema { types { name } } }", None, None, 2),
    ("{ __typename }", None, None, 0),
    # fields the schema does not know fall back on the document
    ("{ nosuch(limit: 3) { id } }", None, None, 3),
]


@pytest.mark.parametrize(("query", "variables", "role", "expected"), SCHEMA_CASES)
def test_schema_aware_estimates(
    analyse: Analyser, model: CostModel, query: str, variables: dict[str, Any] | None, role: str | None, expected: int
) -> None:
    analysis = analyse(query, None, max_tokens=TOKENS)
    assert model.estimate(analysis, variables=variables, role=role) == expected
    # A second request (cached program, cached role) gives the same figure.
    assert model.estimate(analysis, variables=variables, role=role) == expected


FALLBACK_CASES: list[tuple[str, str | None, int]] = [
    ("{ users(limit: 10) { id orders { id } } }", None, 10 * (1 + 1)),  # orders looks like one object
    ("{ users(limit: 10) { id orders { id } } }", "user", 1 * (1 + 1)),
    ("{ users { id orders(where: {}) { id } } }", None, 100 * (1 + 100)),
    ("{ products_aggregate(limit: 5) { aggregate { count } nodes { id } } }", None, 15),
    ("{ products_aggregate { nodes { id } } }", "anonymous", 60),
    ("{ users_by_pk(id: 1) { id } }", None, 1),
    ("mutation { update_users(where: {}) { returning { id } } }", None, 111),
    (INSERT_THREE, None, 14),
    ("subscription { users_stream(batch_size: 10, cursor: []) { id } }", "user", 1),
]


@pytest.mark.parametrize(("query", "role", "expected"), FALLBACK_CASES)
def test_document_only_fallback(
    analyse: Analyser, fallback_model: CostModel, query: str, role: str | None, expected: int
) -> None:
    assert not fallback_model.schema_aware
    assert fallback_model.estimate(analyse(query, None, max_tokens=TOKENS), role=role) == expected


def test_cost_model_parameters(analyse: Analyser, schema: SchemaInfo) -> None:
    model = CostModel(
        schema, None, default_list_size=20, aggregate_cost=3, mutation_base_cost=50, object_cost=2, scalar_cost=1
    )
    assert model.estimate(analyse("{ users { id name } }", None, max_tokens=TOKENS)) == 20 * (2 + 2)
    assert model.estimate(analyse("{ users_aggregate { aggregate { count } } }", None, max_tokens=TOKENS)) == 3
    assert model.estimate(analyse("mutation { insert_users_one(object: {}) { id } }", None, max_tokens=TOKENS)) == 53


def test_estimates_are_clamped(analyse: Analyser, model: CostModel) -> None:
    query = "{ users(limit: 99999999) { orders(limit: 99999999) { items(limit: 99999999) { id } } } }"
    query = query.replace("{ id }", "{ product { inventory(limit: 99999999) { id } } }")
    assert model.estimate(analyse(query, None, max_tokens=TOKENS)) == MAX_COST


def test_per_analysis_work_is_cached(analyse: Analyser, model: CostModel) -> None:
    analysis = analyse("{ users { id orders { id } } }", None, max_tokens=TOKENS)
    assert model.tree(analysis) is model.tree(analysis)
    assert model.estimate(analysis, role="user") == 101
    assert model.estimate(analysis, role="anonymous") == 100 * 101
    assert model.estimate(analysis, role="user") == 101


def test_memoised_results_follow_variables_and_role(analyse: Analyser, model: CostModel) -> None:
    analysis = analyse(
        "query($n: Int, $m: Int) { products(limit: $n) { id inventory(limit: $m) { id } } }", None, max_tokens=TOKENS
    )
    figures = [
        model.estimate(analysis, variables={"n": 5, "m": 2}),
        model.estimate(analysis, variables={"n": 7, "m": 2}),
        model.estimate(analysis, variables={"n": 5, "m": 2, "unrelated": [1]}),
        model.estimate(analysis, variables={"n": 500, "m": 2}, role="anonymous"),
        model.estimate(analysis, variables={"n": 500, "m": 2}),
        model.estimate(analysis),
    ]
    assert figures == [15, 21, 15, 150, 1500, 100 * 101]
    inserted = analyse(
        "mutation($rows: [users_insert_input!]!) { insert_users(objects: $rows) { returning { id } } }",
        None,
        max_tokens=TOKENS,
    )
    assert [model.estimate(inserted, variables={"rows": [{}] * n}) for n in (1, 4, 1)] == [12, 15, 12]


def test_roles_without_a_limit_and_unknown_roles_use_the_default(analyse: Analyser, model: CostModel) -> None:
    analysis = analyse("{ orders { id } }", None, max_tokens=TOKENS)
    assert [model.estimate(analysis, role=role) for role in (None, "admin", "nobody", "user")] == [100, 100, 100, 100]


# --- SchemaInfo ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "field", "kind", "returns"),
    [
        ("query_root", "users", "list", "users"),
        ("query_root", "users_by_pk", "by_pk", "users"),
        ("query_root", "users_aggregate", "aggregate", "users_aggregate"),
        ("users", "orders", "list", "orders"),
        ("users", "orders_aggregate", "aggregate", "orders_aggregate"),
        ("orders", "user", "object", "users"),
        ("users_aggregate", "nodes", "list", "users"),
        ("users_aggregate", "aggregate", "object", "users_aggregate_fields"),
        ("users", "id", "scalar", "uuid"),
        ("mutation_root", "insert_users", "object", "users_mutation_response"),
        ("mutation_root", "update_users_by_pk", "by_pk", "users"),
        ("users_mutation_response", "returning", "list", "users"),
        ("subscription_root", "users_stream", "list", "users"),
    ],
)
def test_schema_info_field_shapes(schema: SchemaInfo, type_name: str, field: str, kind: str, returns: str) -> None:
    info = schema.field(type_name, field)
    assert info is not None
    assert (info.kind, info.type_name) == (kind, returns)


def test_schema_info_from_introspection_matches_sdl(schema: SchemaInfo) -> None:
    result = introspection_from_schema(build_schema(DEMO_SDL))
    for source in (result, {"data": result}):
        info = SchemaInfo.from_introspection(source)
        assert info.fields == schema.fields
        assert info.roots == {"query": "query_root", "mutation": "mutation_root", "subscription": "subscription_root"}


# --- PermissionLimits ------------------------------------------------------------------------------------


def test_permission_limits_match_the_metadata_helper(permissions: PermissionLimits) -> None:
    expected = {
        table.name: {role: limit for role, limit in roles.items() if limit is not None}
        for table, roles in select_permission_limits(load_metadata()).items()
    }
    assert permissions.as_dict() == {name: roles for name, roles in expected.items() if roles}
    assert permissions.limit_for("users", "user") == 1
    assert permissions.limit_for("products", "anonymous") == 50
    assert permissions.limit_for("users", "anonymous") is None
    assert permissions.limit_for("users", None) is None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_permission_limits_type_names_and_includes(tmp_path: Path) -> None:
    _write(
        tmp_path / "databases" / "databases.yaml",
        """
- name: default
  kind: postgres
  tables: "!include default/tables/tables.yaml"
- name: other
  kind: postgres
  customization: {type_names: {prefix: other_, suffix: _t}}
  tables: !include other/tables.yaml
""",
    )
    _write(
        tmp_path / "databases" / "default" / "tables" / "tables.yaml",
        '- "!include public_users.yaml"\n- !include shop_items.yaml\n- "!include public_people.yaml"\n',
    )
    _write(
        tmp_path / "databases" / "default" / "tables" / "public_users.yaml",
        "table: {name: users, schema: public}\nselect_permissions:\n"
        "  - {role: user, permission: {columns: [id], filter: {}, limit: 5}}\n"
        "  - {role: viewer, permission: {columns: [id], filter: {}}}\n",
    )
    _write(
        tmp_path / "databases" / "default" / "tables" / "shop_items.yaml",
        "table: {name: items, schema: shop}\nselect_permissions:\n"
        "  - {role: user, permission: {columns: [id], filter: {}, limit: 7}}\n",
    )
    _write(
        tmp_path / "databases" / "default" / "tables" / "public_people.yaml",
        "table: {name: people, schema: public}\nconfiguration: {custom_name: persons}\nselect_permissions:\n"
        "  - {role: user, permission: {columns: [id], filter: {}, limit: 9}}\n",
    )
    _write(
        tmp_path / "databases" / "other" / "tables.yaml",
        "- table: things\n  select_permissions:\n  - {role: user, permission: {columns: [], filter: {}, limit: 2}}\n",
    )
    limits = PermissionLimits.from_metadata_dir(tmp_path)
    assert limits.as_dict() == {
        "users": {"user": 5},
        "shop_items": {"user": 7},
        "persons": {"user": 9},
        "other_things_t": {"user": 2},
    }


def test_permission_limits_refuse_missing_files_and_include_cycles(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="missing metadata file"):
        PermissionLimits.from_metadata_dir(tmp_path)
    _write(tmp_path / "databases" / "databases.yaml", '- name: default\n  tables: "!include loop.yaml"\n')
    _write(tmp_path / "databases" / "loop.yaml", '"!include loop.yaml"\n')
    with pytest.raises(MetadataError, match="nested more than"):
        PermissionLimits.from_metadata_dir(tmp_path)
