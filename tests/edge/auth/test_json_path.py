"""JSON paths as Hasura reads and writes them (server/src-lib/Data/Parser/JSONPath.hs).

The cases marked "JSONPathSpec" are Hasura's own (server/src-test/Data/Parser/JSONPathSpec.hs),
those marked "claims map" come from server/tests-py/test_jwt_claims_map.py, and the rest follow
one rule of the Haskell parser each.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.auth.json_path import JSONPath, encode_json_path, is_missing, lookup_json_path, parse_json_path

ACCEPTED: list[tuple[str, JSONPath, str]] = [
    ("$", (), "JSONPathSpec: a single '$'"),
    ("$['foo \\' \" bar']", ("foo ' \" bar",), "JSONPathSpec: bracketed single quotes"),
    ('$["bar \' \\" foo"]', ("bar ' \" foo",), "JSONPathSpec: bracketed double quotes"),
    (
        "$.['https://myapp.com/jwt/claims'].user.id",
        ("https://myapp.com/jwt/claims", "user", "id"),
        "claims map: a dot before a bracket",
    ),
    ("$.ABCD", ("ABCD",), "JSONPathSpec encoder: a plain name"),
    ('$["7seven"][0]["@!^@*#(!("]', ("7seven", 0, "@!^@*#(!("), "JSONPathSpec encoder: special keys"),
    ('$["/\\\\ \'\\" \\t\\r\\n \ufffd"]', ("/\\ '\" \t\r\n \ufffd",), "JSONPathSpec encoder: escapes"),
    ("a", ("a",), "the leading $ is optional"),
    ("a.b", ("a", "b"), "the leading $ is optional"),
    (".a", ("a",), "the first element may have its dot"),
    ("$a", ("a",), "a name needs no dot"),
    ("[0]", (0,), "the leading $ is optional before a bracket"),
    ("['a']", ("a",), "the leading $ is optional before a bracket"),
    ("$['a']b", ("a", "b"), "a name needs no dot after a bracket"),
    ("$[0]b", (0, "b"), "a name needs no dot after an index"),
    ("$.a-b_c1", ("a-b_c1",), "names: letters, digits, - and _"),
    ("$._private", ("_private",), "names may start with _"),
    ("$.ünïcödé.名前", ("ünïcödé", "名前"), "letters are Unicode letters (isAlpha)"),
    ("$[0]", (0,), "an index"),
    ("$.a[0][12]", ("a", 0, 12), "indexes in a row"),
    ("$.a.[0]", ("a", 0), "a dot before an index"),
    ("$[007]", (7,), "leading zeros (attoparsec's decimal)"),
    ("$['']", ("",), "an empty quoted key"),
    ('$[""]', ("",), "an empty quoted key"),
    ("$['a.b'][\"c d\"]", ("a.b", "c d"), "any character in quotes"),
    ('$["\\u0041\\/\\b\\f"]', ("A/\b\f",), "JSON escapes in double quotes"),
    ("$['\\u0041\\\"\\\\']", ('A"\\',), "JSON escapes in single quotes"),
    ('$["\\ud83d\\ude00"]', ("\U0001f600",), "a surrogate pair is one character"),
    ("$['a]b']", ("a]b",), "a bracket inside quotes"),
]

REFUSED: list[tuple[str, str]] = [
    ("", "at least one element"),
    ("$.", "a dot needs an element"),
    ("$.a.", "a dot needs an element"),
    ("$..a", "no recursive descent"),
    ("$$", "one $ only"),
    ("$.a$", "no $ inside a name"),
    ("$.1a", "a name starts with a letter or _"),
    ("$.-a", "a name starts with a letter or _"),
    ("$.a b", "no spaces"),
    ("$ .a", "no spaces"),
    ("$.a:b", "no punctuation in a name"),
    ("$.a/b", "no punctuation in a name"),
    ("$.a\u0661", "digits are ASCII digits (isDigit)"),
    ("$.*", "no wildcards"),
    ("$[*]", "no wildcards"),
    ("$.a[-1]", "no negative indexes"),
    ("$[1.5]", "indexes are whole numbers"),
    ("$[0x1]", "indexes are decimal"),
    ("$[]", "a bracket needs an index or a key"),
    ("$[ 0]", "no spaces in a bracket"),
    ("$[0 ]", "no spaces in a bracket"),
    ("$[a]", "keys in brackets are quoted"),
    ("$['a','b']", "one key per bracket"),
    ("$.a[?(@.x)]", "no filters"),
    ("$.a['b]", "quotes are closed"),
    ("$['a'", "brackets are closed"),
    ("$['a\\']", "an escaped quote does not close"),
    ('$["it\\\'s"]', "JSON has no \\' escape"),
    ("$['\\x']", "only JSON escapes"),
    ('$["\\u00"]', "\\u takes four hex digits"),
    ("$['a\nb']", "no raw control characters, as in JSON"),
    ("@.a", "the root is $"),
]


@pytest.mark.parametrize(("path", "expected", "rule"), ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_accepted(path: str, expected: JSONPath, rule: str) -> None:
    assert parse_json_path(path) == expected, rule


@pytest.mark.parametrize(("path", "rule"), REFUSED, ids=[case[0] for case in REFUSED])
def test_refused_with_hasuras_hint(path: str, rule: str) -> None:
    with pytest.raises(ValueError, match=r"invalid JSON path .*use quotes enclosed in brackets") as info:
        parse_json_path(path)
    assert repr(path) in str(info.value), rule


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$[9223372036854775808]", "larger than 2\\*\\*63 - 1"),
        ("$['\\ud800']", "lone UTF-16 surrogate"),
        ('$["\\udc00x"]', "lone UTF-16 surrogate"),
    ],
)
def test_refused_where_hasura_would_read_another_key(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_json_path(path)


def test_the_largest_index_is_accepted() -> None:
    assert parse_json_path("$[9223372036854775807]") == (2**63 - 1,)


def test_a_path_must_be_a_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_json_path(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "encoded"), [(case[1], case[0]) for case in ACCEPTED[4:7]])
def test_encoder_cases_of_json_path_spec(path: JSONPath, encoded: str) -> None:
    assert encode_json_path(path) == encoded


def test_encoder_escapes_controls_as_aeson_does() -> None:
    assert encode_json_path(("\x00\x08\x0c\x1f\x7f",)) == '$["\\u0000\\u0008\\u000c\\u001f\x7f"]'
    assert encode_json_path(()) == "$"
    assert encode_json_path(("", "a-b", "_a", "9")) == '$[""].a-b._a["9"]'


KEYS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8)
PATHS = st.lists(st.one_of(st.integers(0, 100), KEYS), min_size=1, max_size=20).map(tuple)


@settings(max_examples=1000, deadline=None)
@given(PATHS)
def test_encoded_paths_parse_back(path: JSONPath) -> None:
    """JSONPathSpec, "encodes and parses random JSON paths": any key, any index, round trip."""
    assert parse_json_path(encode_json_path(path)) == path


@pytest.mark.parametrize(
    ("document", "path", "found"),
    [
        ({"a": {"b": [1, {"c": "x"}]}}, ("a", "b", 1, "c"), "x"),
        ({"a": None}, ("a",), None),
        ({"a": 1}, (), {"a": 1}),
    ],
)
def test_lookup_finds(document: object, path: JSONPath, found: object) -> None:
    assert lookup_json_path(document, path) == found


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"a": 1}, ("b",)),
        ({"a": [1]}, ("a", 1)),
        ({"a": {"0": 1}}, ("a", 0)),
        ({"a": [1]}, ("a", "0")),
        ({"a": "text"}, ("a", 0)),
        ([{"a": 1}], ("a",)),
    ],
)
def test_lookup_misses(document: object, path: JSONPath) -> None:
    assert is_missing(lookup_json_path(document, path))
