"""analyse(): Hasura's depth, the amounts, operation selection, the cost plan and the LRU."""

from __future__ import annotations

import time

import pytest
from graphql import get_introspection_query

from edge.graphql.analysis import Analyser, Arg, OperationAnalysis, PlanField, make_analyser, nesting_depth
from edge.graphql.operation import InvalidDocument, operation_type

TOKENS = 15_000

# Hasura's own examples (docs/docs/security/api-limits.mdx in hasura/graphql-engine) come first.
FRAGMENT_MUSIC = "fragment musicInfo on Music { id title artists }"
DEPTH_CASES = [
    ("{ __typename }", 0),
    ("query deep1_1 { viewer { name } }", 1),
    ("query deep1_2 { viewer { ... on User { name } } }", 1),
    ("query deep2 { viewer { albums { title } } }", 2),
    ("query deep3 { viewer { albums { ...musicInfo songs { ...musicInfo } } } } " + FRAGMENT_MUSIC, 3),
    ("{ users { id } products { id } }", 1),
    ("{ users { orders { items { product { name } } } } }", 4),
    ("{ users { ... on users { ... on users { orders { id } } } } }", 2),
    ("query { ...Root } fragment Root on query_root { users { ...U } } fragment U on users { orders { id } }", 2),
    ("{ users { __typename } }", 1),
    ("{ __schema { types { fields { name } } } }", 0),  # introspection is excluded, as in Hasura
    ('{ __type(name: "users") { name } users { orders { id } } }', 2),
]


@pytest.mark.parametrize(("query", "depth"), DEPTH_CASES)
def test_depth_follows_hasura_semantics(analyse: Analyser, query: str, depth: int) -> None:
    assert analyse(query, None, max_tokens=TOKENS).depth == depth


# query, aliases, root fields, root field names, field count, Hasura nodes, directives, introspection
AMOUNT_CASES = [
    ("{ __typename }", 0, 1, ("__typename",), 1, 0, 0, False),
    ("{ a: users { id } b: users { x: id } }", 3, 2, ("users",), 4, 2, 0, False),
    (
        "query { ...Roots } fragment Roots on query_root { users { id } products { id } }",
        0,
        2,
        ("users", "products"),
        4,
        2,
        0,
        False,
    ),
    ("{ users { ...F ...F } } fragment F on users { a: id }", 2, 1, ("users",), 3, 1, 0, False),
    (
        "query Q($s: Boolean! @deprecated) @cached { users @include(if: $s) { id @skip(if: false) } }"
        " fragment F on users @x { id }",
        0,
        1,
        ("users",),
        2,
        1,
        5,
        False,
    ),
    ("{ __schema { types { name } } }", 0, 1, ("__schema",), 3, 2, 0, True),
    ('{ __type(name: "users") { name } users { id } }', 0, 2, ("__type", "users"), 4, 2, 0, True),
    ("{ users { __typename } }", 0, 1, ("users",), 2, 1, 0, False),
    ("{ u1: users_by_pk(id: 1) { id } u2: users_by_pk(id: 2) { id } }", 2, 2, ("users_by_pk",), 4, 2, 0, False),
]


@pytest.mark.parametrize(
    ("query", "aliases", "root_fields", "names", "fields", "nodes", "directives", "introspection"), AMOUNT_CASES
)
def test_amounts_are_counted_with_fragments_expanded(
    analyse: Analyser,
    query: str,
    aliases: int,
    root_fields: int,
    names: tuple[str, ...],
    fields: int,
    nodes: int,
    directives: int,
    introspection: bool,
) -> None:
    result = analyse(query, None, max_tokens=TOKENS)
    assert (result.aliases, result.root_fields, result.root_field_names) == (aliases, root_fields, names)
    assert (result.field_count, result.nodes, result.directives) == (fields, nodes, directives)
    assert result.introspection is introspection


def test_duplicate_directives_at_one_location_are_counted(analyse: Analyser) -> None:
    query = "query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa a @skip(if: true) }"
    result = analyse(query, None, max_tokens=TOKENS)
    assert (result.directives, result.duplicate_directives) == (11, 9)


@pytest.mark.parametrize(
    ("query", "name", "kind"),
    [
        ("mutation { insert_users_one(object: {}) { id } }", None, "mutation"),
        ("subscription S { users_stream(batch_size: 10, cursor: []) { id } }", "S", "subscription"),
        ("query A { users { id } } mutation B { delete_users(where: {}) { affected_rows } }", "B", "mutation"),
        ("query A { users { id } } mutation B { delete_users(where: {}) { affected_rows } }", "A", "query"),
    ],
)
def test_the_named_operation_is_selected(analyse: Analyser, query: str, name: str | None, kind: str) -> None:
    result = analyse(query, name, max_tokens=TOKENS)
    assert (result.operation_type, result.operation_name) == (kind, name)


@pytest.mark.parametrize(
    ("query", "name", "message"),
    [
        (
            "query A { a } query B { b }",
            None,
            "exactly one operation has to be present in the document when operationName is not specified",
        ),
        ("fragment F on T { a }", None, "exactly one operation has to be present"),
        ("query A { a }", "B", "no such operation found in the document"),
        ("{ a { b } } SECRET-TEXT {", None, "not a valid graphql query"),
        ("{ a { ...Missing } }", None, "not defined"),
        ("{ a { ...F } } fragment F on T { a } fragment F on T { b }", None, "more than once"),
        ("{ a } fragment A on T { ...A }", None, "cycle"),
    ],
)
def test_invalid_documents_are_refused_with_hasura_texts(
    analyse: Analyser, query: str, name: str | None, message: str
) -> None:
    with pytest.raises(InvalidDocument) as caught:
        analyse(query, name, max_tokens=TOKENS)
    assert caught.value.status == 400
    assert caught.value.code == "validation-failed"
    assert message in caught.value.message
    assert "SECRET" not in caught.value.message


def test_operation_type_helper_keeps_its_behaviour() -> None:
    assert operation_type("{ a }", None) == "query"
    assert operation_type("mutation M { a } query Q { b }", "M") == "mutation"
    with pytest.raises(InvalidDocument):
        operation_type("{", None)


def test_standard_introspection_query_is_analysed(analyse: Analyser) -> None:
    result = analyse(get_introspection_query(descriptions=True), None, max_tokens=TOKENS)
    assert result.introspection
    assert result.depth == 0
    assert result.introspection_depth == 14


# --- The cost plan ---------------------------------------------------------------------------------------


def _only(plan: tuple[PlanField, ...], key: str) -> PlanField:
    matches = [field for field in plan if field.key == key]
    assert len(matches) == 1, [field.key for field in plan]
    return matches[0]


def test_fields_with_the_same_response_key_merge_in_document_order(analyse: Analyser) -> None:
    query = "{ users { id } users { name orders { id } } ...R } fragment R on query_root { users { id } }"
    result = analyse(query, None, max_tokens=TOKENS)
    users = _only(result.plan, "users")
    assert [child.key for child in users.children] == ["id", "name", "orders"]
    assert result.field_count == 8


def test_five_hundred_copies_of_a_field_are_one_plan_field(analyse: Analyser) -> None:
    result = analyse("{ users { " + "id " * 500 + "} }", None, max_tokens=TOKENS)
    assert result.field_count == 501
    assert len(result.plan[0].children) == 1


def test_aliases_are_separate_plan_fields(analyse: Analyser) -> None:
    result = analyse("{ a: users(limit: 1) { id } b: users(limit: 2) { id } }", None, max_tokens=TOKENS)
    assert [(field.key, field.name, field.limit) for field in result.plan] == [
        ("a", "users", Arg(literal=1)),
        ("b", "users", Arg(literal=2)),
    ]


@pytest.mark.parametrize(
    ("field", "limit", "rows", "list_arguments"),
    [
        ("users(limit: 5)", Arg(literal=5), None, True),
        ("users(limit: -5)", Arg(literal=0), None, True),
        ("users(limit: $n)", Arg(variable="n", default=None), None, True),
        ("users(limit: $d)", Arg(variable="d", default=7), None, True),
        ('users(limit: "5")', None, None, True),
        ("users(where: {})", None, None, True),
        ("users_stream(batch_size: 3, cursor: [])", Arg(literal=3), None, True),
        ("users(first: 4)", Arg(literal=4), None, True),
        ("insert_users(objects: [{}, {}, {}])", None, Arg(literal=3), False),
        ("insert_users(objects: $rows)", None, Arg(variable="rows"), False),
        ("users_by_pk(id: 1)", None, None, False),
        ("users", None, None, False),
    ],
)
def test_plan_records_where_row_counts_come_from(
    analyse: Analyser, field: str, limit: Arg | None, rows: Arg | None, list_arguments: bool
) -> None:
    query = f"query($n: Int, $d: Int = 7, $rows: [users_insert_input!]!) {{ {field} {{ id }} }}"
    plan = analyse(query, None, max_tokens=TOKENS).plan[0]
    assert (plan.limit, plan.rows, plan.list_arguments, plan.selection) == (limit, rows, list_arguments, True)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [(None, 7), ({}, 7), ({"d": 3}, 3), ({"d": None}, 7), ({"d": -1}, 0), ({"d": "x"}, None), ({"d": True}, None)],
)
def test_arg_values_per_request(variables: dict[str, object] | None, expected: int | None) -> None:
    assert Arg(variable="d", default=7).value(variables) == expected
    assert Arg(variable="rows").value({"rows": [1, 2]}) == 2


# --- The cache -------------------------------------------------------------------------------------------


def test_a_repeated_operation_is_the_cached_object() -> None:
    analyse = make_analyser(maxsize=8)
    query = "query Q($n: Int) { users(limit: $n) { id orders { id } } }"
    first = analyse(query, "Q", max_tokens=TOKENS)
    second = analyse(query, "Q", max_tokens=TOKENS)
    assert second is first
    info = analyse.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    # The key is (query, operation name, max tokens).
    assert analyse(query, None, max_tokens=TOKENS) is not first
    assert analyse(query, "Q", max_tokens=TOKENS + 1) is not first


def test_a_cache_hit_costs_a_lookup() -> None:
    analyse = make_analyser(maxsize=8)
    query = "{ users(limit: 10) { id name orders(limit: 5) { id total items { id quantity } } } }"
    analyse(query, None, max_tokens=TOKENS)
    start = time.perf_counter()
    for _ in range(10_000):
        analyse(query, None, max_tokens=TOKENS)
    per_hit = (time.perf_counter() - start) / 10_000
    assert per_hit < 50e-6  # generous: a hit is ~1 µs, a parse ~150 µs


def test_the_cache_is_bounded() -> None:
    analyse = make_analyser(maxsize=2)
    first = analyse("{ a }", None, max_tokens=TOKENS)
    analyse("{ b }", None, max_tokens=TOKENS)
    analyse("{ c }", None, max_tokens=TOKENS)
    assert analyse.cache_info().currsize == 2
    assert analyse("{ a }", None, max_tokens=TOKENS) is not first


def test_refusals_are_cached_and_raised_afresh() -> None:
    analyse = make_analyser(maxsize=8)
    errors = []
    for _ in range(2):
        with pytest.raises(InvalidDocument) as caught:
            analyse("{ broken", None, max_tokens=TOKENS)
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert analyse.cache_info().hits == 1


def test_analysis_is_immutable(analyse: Analyser) -> None:
    result: OperationAnalysis = analyse("{ a }", None, max_tokens=TOKENS)
    with pytest.raises(AttributeError):
        result.depth = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("query", "depth"),
    [
        ("{ a { b } }", 2),
        ('{ a(x: "{{{{[[[") }', 1),
        ('{ a(x: """ {{{ \\""" {{ """) }', 1),
        ("{ a # {{{{\n }", 1),
        ("{ a(x: [[1], {y: [2]}]) }", 4),
    ],
)
def test_nesting_scan_ignores_strings_and_comments(query: str, depth: int) -> None:
    assert nesting_depth(query) == depth
