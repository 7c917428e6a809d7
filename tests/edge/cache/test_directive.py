"""@cached is read like Hasura EE reads it, and removed from what Hasura CE receives."""

from __future__ import annotations

import pytest

from edge.cache.directive import cache_directive, normalised_document


@pytest.mark.parametrize(
    ("query", "ttl", "refresh"),
    [
        ("query Q @cached { a }", 60, False),
        ("query Q @cached(ttl: 120) { a }", 120, False),
        ("query Q @cached(ttl: 300) { a }", 300, False),
        ("query Q @cached(ttl: 301) { a }", 300, False),
        ("query Q @cached(ttl: 100000) { a }", 300, False),
        ("query Q @cached(ttl: 0) { a }", 1, False),
        ("query Q @cached(ttl: -5) { a }", 1, False),
        ("query Q @cached(refresh: true) { a }", 60, True),
        ("query Q @cached(ttl: 10, refresh: false) { a }", 10, False),
        ("query Q($t: Int, $r: Boolean) @cached(ttl: $t, refresh: $r) { a }", 60, False),
        ("{ a } ", None, None),
        ("query Q @ # a comment between the tokens\n , cached { a }", 60, False),
        ("query Q @cachedX { a }", None, None),
    ],
)
def test_ttl_defaults_to_60_is_clamped_to_1_300_and_refresh_is_literal_only(
    query: str, ttl: int | None, refresh: bool | None
) -> None:
    directive = cache_directive(query, None)
    if ttl is None:
        assert directive is None
    else:
        assert directive is not None
        assert (directive.ttl, directive.refresh) == (ttl, refresh)


@pytest.mark.parametrize(
    "query",
    [
        "mutation M @cached { insert_a(objects: []) { affected_rows } }",
        "subscription S @cached(ttl: 5) { a }",
    ],
)
def test_cached_on_a_mutation_or_subscription_is_left_to_hasura(query: str) -> None:
    assert cache_directive(query, None) is None


def test_documents_without_the_directive_or_that_do_not_parse_give_none() -> None:
    assert cache_directive("query Q { a }", None) is None
    assert cache_directive("query Q @cached { a", None) is None
    assert cache_directive("query A @cached { a } query B { b }", None) is None  # no operation selected
    assert cache_directive("query A @cached { a } query B { b }", "C") is None


def test_only_the_selected_operation_counts() -> None:
    document = "query A @cached(ttl: 5) { a } query B { b }"
    assert cache_directive(document, "B") is None
    directive = cache_directive(document, "A")
    assert directive is not None
    assert directive.ttl == 5
    assert directive.forwarded_query == "query A {\n  a\n}\n\nquery B {\n  b\n}"


def test_the_forwarded_query_keeps_everything_but_cached() -> None:
    query = """
        # a comment
        query Q($id: Int!) @cached(ttl: 30) @include(if: true) {
          user(id: $id) { ...F  posts(limit: 2) { title } }
        }
        fragment F on users { id name }
    """
    directive = cache_directive(query, "Q")
    assert directive is not None
    assert directive.forwarded_query == (
        "query Q($id: Int!) @include(if: true) {\n"
        "  user(id: $id) {\n"
        "    ...F\n"
        "    posts(limit: 2) {\n"
        "      title\n"
        "    }\n"
        "  }\n"
        "}\n\n"
        "fragment F on users {\n"
        "  id\n"
        "  name\n"
        "}"
    )
    assert "@cached" not in directive.forwarded_query
    assert directive.normalised == directive.forwarded_query


def test_repeated_cached_directives_are_all_removed_and_the_first_counts() -> None:
    directive = cache_directive("query Q @cached(ttl: 7) @cached(ttl: 9) { a }", None)
    assert directive is not None
    assert directive.ttl == 7
    assert directive.forwarded_query == "query Q {\n  a\n}"


def test_cached_on_a_field_is_not_the_operation_directive() -> None:
    assert cache_directive("query Q { a @cached }", None) is None


def test_normalised_document_ignores_whitespace_comments_other_operations_and_the_directive() -> None:
    one = normalised_document("query Q @cached(ttl: 9) { users { id name } } query Other { x }", "Q")
    two = normalised_document("# hi\nquery Q {\n users { id, name }\n}", None)
    assert one == two == "query Q {\n  users {\n    id\n    name\n  }\n}"
    assert normalised_document("query Q { users { name id } }", None) != one  # field order matters (as Hasura)


def test_normalised_document_refuses_what_does_not_parse() -> None:
    with pytest.raises(ValueError):
        normalised_document("query {", None)
