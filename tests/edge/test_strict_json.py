"""edge.strict_json: JSON that a first-wins parser, a last-wins parser and orjson read alike, or a 400."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import strict_json
from edge.errors import DuplicateJSONKey, InvalidJSON, JSONNumberOutOfRange, JSONTooDeep
from tests.support.json_readings import as_exact, first_wins, last_wins
from tests.support.json_texts import deep, json_texts


def refused(data: bytes | str, where: str = "The request body") -> InvalidJSON:
    with pytest.raises(InvalidJSON) as caught:
        strict_json.loads(data, where)
    assert caught.value.status == 400
    return caught.value


@pytest.fixture
def exact_readings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts read a second time by the standard library's ``json`` (the module's documented slower
    path, taken when counting quotes cannot prove that no key was dropped, or for a double)."""
    read: list[str] = []
    decode = json.JSONDecoder.decode

    def counting(self: json.JSONDecoder, text: str, *args: Any, **kwargs: Any) -> Any:
        read.append(text)
        return decode(self, text, *args, **kwargs)

    monkeypatch.setattr(json.JSONDecoder, "decode", counting)
    return read


def nested(depth: int, inner: str = "1") -> str:
    """``depth`` levels of objects and arrays, alternating, around ``inner``."""
    text = inner
    for level in range(depth):
        text = f'{{"k":{text}}}' if level % 2 else f"[{text}]"
    return text


# --- what passes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"query":"{ products { id } }","variables":{"limit":10},"operationName":null}',
        '[{"query":"{ a }"},{"query":"{ a }"}]',  # equal operations in a batch are not duplicate keys
        '{"query":"{ a }","variables":{"query":"x","nested":{"query":"y"}}}',  # same key, other objects
        '{"Query":"x","query":"y"}',  # keys are case-sensitive
        '{"q":"say \\"hi\\"","r":"\\\\"}',  # escaped quotes and backslashes
        '{"a":"\\u0071uery","b":"\\ud83d\\ude00","c":"\\u0000"}',  # escapes in values only
        '{"a":[],"b":{},"c":[[],{}],"d":true,"e":false,"f":null,"g":""}',
        '"just a string"',
        "42",
        '  {"a" : 1 }\n',
    ],
)
def test_unambiguous_json_is_read_as_orjson_reads_it(text: str) -> None:
    for data in (text, text.encode()):
        assert strict_json.loads(data) == orjson.loads(data)


def test_graphql_string_literals_stay_on_the_quote_counting_path(exact_readings: list[str]) -> None:
    # Escaped quotes make the plain count differ; the re-serialisation count accounts for them.
    text = json.dumps({"query": '{ users(where: {name: {_eq: "bob"}}) { id } }', "variables": {"q": 'a"b'}})
    value = orjson.loads(text)
    assert text.count('"') != 2 * 5  # five strings: the plain count alone would send it to the exact reading
    for data in (text, text.encode()):
        assert strict_json.loads(data) == value
    assert exact_readings == []  # the re-serialised count proved it: not read again


def test_a_quote_written_as_u0022_without_a_repeated_key_is_read_exactly_and_passes(
    exact_readings: list[str],
) -> None:
    # 9 quotes for 4 strings, so the plain count differs; the \u0022 sends it past the re-serialised count.
    text = '{"a":"\\u0022","b":"\\""}'
    for data in (text, text.encode()):
        assert strict_json.loads(data) == {"a": '"', "b": '"'}
    assert exact_readings == [text, text]


# --- duplicate keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"query":"{ unchecked }","query":"{ checked }"}', "query"),  # top level
        ('[{"query":"{ a }"},{"query":"{ b }","query":"{ c }"}]', "query"),  # in a batch item
        ('{"query":"{ a }","variables":{"id":1,"id":2}}', "id"),  # in variables
        ('{"query":"{ a }","extensions":{"persistedQuery":{"version":1,"version":2}}}', "version"),
        ('{"query":"{ a }","extensions":{"x":1,"x":1}}', "x"),  # equal values are still refused
        ('{"a":[1,[2,{"b":[{"c":null,"c":null}]}]]}', "c"),  # deep in arrays and objects
        ('{"query":"{ a }","\\u0071uery":"{ b }"}', "query"),  # equal only once unescaped
        ('{"\\u0061":1,"\\u0061":2}', "a"),  # both escaped
        ('{"\\ud83d\\ude00":1,"\\ud83d\\ude00":2}', "\U0001f600"),
        ('{"":1,"":2}', ""),
    ],
)
def test_a_repeated_key_anywhere_is_refused(text: str, key: str) -> None:
    for data in (text, text.encode()):
        error = refused(data)
        assert isinstance(error, DuplicateJSONKey)
        assert error.code == "duplicate-json-key"
        assert error.message.startswith("The request body repeats the key ")
        assert repr(key) in error.message


def test_the_message_names_where_the_text_came_from() -> None:
    error = refused('{"a":1,"a":2}', "Query parameter 'variables'")
    assert error.message.startswith("Query parameter 'variables' repeats the key 'a'")


# Each condition of the fast path is the only one that catches these: removing any of them accepts a
# duplicate (the tests above would not notice, since their quote counts already differ).


def test_the_plain_quote_count_catches_a_dropped_key() -> None:
    data = b'{"a":1,"a":2}'  # no escape, no double: only the count differs (4 quotes, 1 string)
    value = orjson.loads(data)
    assert b"\\" not in data and not any(isinstance(item, float) for item in value.values())
    assert data.count(b'"') != 2 * 1
    assert isinstance(refused(data), DuplicateJSONKey)


def test_the_reserialised_quote_count_catches_a_dropped_key_that_held_escaped_quotes() -> None:
    # Escaped quotes defeat the plain count; the re-serialisation count must still differ.
    text = '{"q":"\\"","q":"\\""}'  # 10 quotes; the tree {"q":"\""} re-serialises with 5
    assert text.count('"') != 2 * 2 and orjson.dumps(orjson.loads(text)).count(b'"') != text.count('"')
    for data in (text, text.encode()):
        assert isinstance(refused(data), DuplicateJSONKey)


def test_a_quote_written_as_u0022_never_passes_on_counts() -> None:
    # The kept value's \u0022 escapes add quotes to the tree, none to the text: the counts agree
    # (6 quotes in the text, 6 in orjson's '{"a":"\"\""}'), so only the \u0022 test refuses it.
    text = '{"a":1,"a":"\\u0022\\u0022"}'
    assert orjson.dumps(orjson.loads(text)).count(b'"') == text.count('"')
    for data in (text, text.encode()):  # both spellings of the \u0022 test
        assert isinstance(refused(data), DuplicateJSONKey)


def test_a_double_alone_sends_the_text_to_the_exact_reading(exact_readings: list[str]) -> None:
    data = b'{"a":1.00000000000000000001}'  # quotes match; only the double flag looks closer
    assert data.count(b'"') == 2
    assert isinstance(refused(data), JSONNumberOutOfRange)
    assert strict_json.loads(b'{"a":0.5}') == {"a": 0.5}
    assert exact_readings == [data.decode(), '{"a":0.5}']


# --- nesting ----------------------------------------------------------------------------------------


def test_nesting_up_to_the_bound_is_accepted() -> None:
    assert strict_json.MAX_DEPTH == 128
    assert strict_json.loads(nested(128)) == orjson.loads(nested(128))
    assert strict_json.loads("[" * 128 + "]" * 128) == orjson.loads("[" * 128 + "]" * 128)


@pytest.mark.parametrize("depth", [129, 255, 300, 1000, 1024])
def test_nesting_over_the_bound_is_json_too_deep(depth: int) -> None:
    body = f'{{"query":"{{ a }}","extensions":{nested(depth - 1)}}}'  # the body itself is one level
    error = refused(body)
    assert isinstance(error, JSONTooDeep)
    assert error.code == "json-too-deep"
    assert "128" in error.message


def test_nesting_beyond_what_orjson_parses_is_invalid_json() -> None:
    error = refused("[" * 1025 + "]" * 1025)
    assert type(error) is InvalidJSON
    assert error.code == "invalid-json"


def test_deep_nesting_inside_a_string_is_only_text() -> None:
    assert strict_json.loads(json.dumps({"q": "[" * 5000})) == {"q": "[" * 5000}


# --- numbers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    [
        "0",
        "-0",
        "18446744073709551615",  # 2**64 - 1
        "-9223372036854775808",  # -2**63
        "0.1",
        "1e2",
        "1E+2",
        "-0.0",
        "0.30000000000000004",
        "1.0000000000000000",  # trailing zeros do not change the value
        "100000000000000000000.0",
        "5e-324",  # the smallest subnormal
        "1.7976931348623157e308",  # the largest double
        "123456789.125",
    ],
)
def test_numbers_the_edge_reads_exactly_pass(literal: str) -> None:
    value = strict_json.loads(f'{{"n":{literal}}}')["n"]
    exact = Decimal(literal)
    assert (Decimal(repr(value)) if isinstance(value, float) else Decimal(value)) == exact


@pytest.mark.parametrize(
    "literal",
    [
        "18446744073709551616",  # 2**64: orjson would silently read a double
        "-9223372036854775809",  # -2**63 - 1
        "100000000000000000000",
        "1" + "0" * 300,  # orjson reads 1e300; the literal is not read as an integer at all
        "1.00000000000000000001",
        "9007199254740993.0",  # 2**53 + 1 has no double
        "0.1000000000000000055511151231257827",  # a longer spelling of 0.1's double is still not 0.1
        "4.9e-324",  # reads as 5e-324
        "1e-400",  # underflows to 0.0
        "2.5e-324",
    ],
)
def test_numbers_the_edge_cannot_read_exactly_are_refused(literal: str) -> None:
    error = refused(f'{{"query":"{{ a }}","variables":{{"n":[{literal}]}}}}')
    assert isinstance(error, JSONNumberOutOfRange)
    assert error.code == "json-number-out-of-range"
    assert "as strings" in error.message
    assert len(error.message) < 300  # the literal is cut short


@pytest.mark.parametrize(
    "text", ["1e400", "-1e400", "1" + "0" * 5000, "NaN", "Infinity", "[1,]", "01", '{"a":1}x', "\ufeff{}"]
)
def test_what_orjson_does_not_parse_is_invalid_json(text: str) -> None:
    error = refused(text)
    assert type(error) is InvalidJSON
    assert error.message == "The request body is not valid JSON"


@pytest.mark.parametrize("data", [b'{"a":"\xff"}', b'{"a":"\\ud800"}', b'{"a":"\xed\xa0\x80"}', b""])
def test_invalid_utf8_and_lone_surrogates_are_invalid_json(data: bytes) -> None:
    assert type(refused(data)) is InvalidJSON


# --- the property -----------------------------------------------------------------------------------


@settings(
    max_examples=500, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.one_of(json_texts(), deep()))
def test_whatever_is_accepted_reads_alike_first_wins_last_wins_and_exactly(text: str) -> None:
    try:
        value = strict_json.loads(text.encode())
    except InvalidJSON as error:
        assert error.code in ("duplicate-json-key", "json-number-out-of-range", "json-too-deep"), error.message
        return
    assert as_exact(value) == first_wins(text, exact=True) == last_wins(text, exact=True)
    assert value == orjson.loads(text)
