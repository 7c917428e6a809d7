"""Accept parsing (RFC 9110 §12.5.1) and the choice between GraphQL over HTTP's two response media types."""

from __future__ import annotations

import pytest

from edge.content_negotiation import MAX_ACCEPT_CHARS, parse_accept, prefers_graphql_response_json

MODERN = "application/graphql-response+json"


@pytest.mark.parametrize(
    ("accept", "modern"),
    [
        # What real clients send.
        ("application/graphql-response+json,application/json;q=0.9", True),  # Apollo Client 4 (HttpLink)
        (
            "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, "
            "multipart/mixed",
            True,
        ),  # urql 5/6: equal weights, the modern type named
        ("application/graphql-response+json; charset=utf-8, application/json; charset=utf-8", True),  # the spec's
        ("application/graphql-response+json, application/json;q=0.9", True),  # the spec's Appendix A
        ("application/json", False),  # Hasura clients, Apollo Client 3
        ("application/json, text/plain, */*", False),  # axios
        ("*/*", False),  # curl, fetch, aiohttp, requests, httpx (gql)
        (None, False),  # no Accept at all
        ("", False),
        (MODERN, True),
        # Weights decide.
        (f"application/json, {MODERN};q=0.5", False),
        (f"application/json;q=0.5, {MODERN}", True),
        (f"application/json;q=0.999, {MODERN};q=1.000", True),
        (f"application/json;q=1, {MODERN};q=0.999", False),
        # Equal weights: the modern type only if named.
        (f"application/json, {MODERN}", True),
        (f"{MODERN}, application/json", True),
        ("application/*", False),
        ("*/*;q=0.5, application/json;q=0.5", False),
        (f"*/*, {MODERN};q=1", True),
        # The most specific range sets a type's weight, whatever the order.
        (f"{MODERN};q=0.9, */*", False),  # json gets */*'s 1, the modern type its own 0.9
        (f"*/*;q=0.1, {MODERN}", True),
        (f"{MODERN};q=0, */*", False),  # named as not acceptable
        (f"application/*;q=0.2, {MODERN};q=0.3", True),
        (f"application/json;q=0, {MODERN};q=0.001", True),
        (f"application/json;charset=utf-8;q=0.1, application/json, {MODERN};q=0.5", True),  # the charset one counts
        # Case-insensitive names.
        ("Application/GraphQL-Response+JSON", True),
        (f"{MODERN};Q=0.5, application/json", False),
        (f"{MODERN};CHARSET=UTF-8", True),
        # Parameters must match the representation (charset=utf-8, nothing else).
        (f"{MODERN};charset=utf-8", True),
        (f'{MODERN};charset="utf-8"', True),
        (f"{MODERN};charset=iso-8859-1, application/json;q=0.1", False),
        (f"{MODERN};profile=x, application/json;q=0.1", False),
        # Whitespace, empty elements and empty parameters (RFC 9110 §5.6.1, §5.6.6).
        (f" ,, {MODERN} ;  q=0.8 ,application/json;q=0.7 ,", True),
        (f"{MODERN};;q=0.8, application/json;q=0.7", True),
        (f"{MODERN}\t;\tq=0.8", True),
        # RFC 7231's accept-ext after the weight is ignored.
        (f"{MODERN};q=0.8;level=1, application/json;q=0.7", True),
        (f'{MODERN};charset="utf-8", application/json;q=0.5', True),
        # Neither type acceptable: the Accept header is disregarded.
        ("text/html", False),
        (f"{MODERN};q=0, application/json;q=0", False),
    ],
)
def test_the_preferred_media_type(accept: str | None, modern: bool) -> None:
    assert prefers_graphql_response_json(accept) is modern


@pytest.mark.parametrize(
    "element",
    [
        f"{MODERN};q=1.5",  # above 1
        f"{MODERN};q=1.001",
        f"{MODERN};q=0.1234",  # more than three decimals
        f"{MODERN};q=.5",
        f"{MODERN};q=",
        f"{MODERN};q=abc",
        f"{MODERN};q=-0",
        f"{MODERN};q = 0.5",  # no whitespace around '='
        f"{MODERN} q=0.5",
        "application",  # no subtype
        "application/",
        "/json",
        "*/json",  # */subtype is not a media range
        "appli cation/json",
        f'{MODERN};charset="utf-8',  # an unterminated quoted string
        f"{MODERN};charset",  # a parameter without a value
    ],
)
def test_a_malformed_element_is_ignored(element: str) -> None:
    assert parse_accept(element) == []
    if '"' not in element:  # an unterminated quoted string runs to the end of the header
        assert [r.subtype for r in parse_accept(f"{element}, application/json;q=0.2")] == ["json"]


def test_a_quoted_parameter_value_may_hold_commas_and_escaped_quotes() -> None:
    ranges = parse_accept(f'application/json;x="a, {MODERN}, b\\"c";q=0.3, text/plain')
    assert [(r.type, r.subtype, r.parameters, r.weight) for r in ranges] == [
        ("application", "json", [("x", f'a, {MODERN}, b"c')], 0.3),
        ("text", "plain", [], 1.0),
    ]


def test_valid_weights_and_their_values() -> None:
    weights = [
        media_range.weight for media_range in parse_accept("a/a;q=0, a/b;q=0., a/c;q=0.5, a/d;q=1., a/e;q=1.000")
    ]
    assert weights == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_the_weight_is_the_highest_of_equally_specific_ranges() -> None:
    assert prefers_graphql_response_json(f"{MODERN};q=0.2, {MODERN};q=0.9, application/json;q=0.5")


def test_an_accept_value_over_the_limit_is_disregarded() -> None:
    at_the_limit = MODERN + " " * (MAX_ACCEPT_CHARS - len(MODERN))
    assert prefers_graphql_response_json(at_the_limit)
    assert not prefers_graphql_response_json(at_the_limit + " ")
