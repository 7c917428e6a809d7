"""Keys separate identities unless their sessions are identical; rules come from validated settings."""

from __future__ import annotations

import hashlib

import orjson
import pydantic
import pytest

from edge.cache import key as key_module
from edge.cache.key import KEY_VERSION, cache_key
from edge.cache.rules import CacheRule, match_rule

DOC = "query Q {\n  a\n}"


def test_two_users_never_share_a_key() -> None:
    one = cache_key(DOC, "Q", None, "user", {"x-hasura-user-id": "1"})
    two = cache_key(DOC, "Q", None, "user", {"x-hasura-user-id": "2"})
    assert one != two
    assert len(one) == 64 and int(one, 16) >= 0


def test_every_session_variable_and_the_role_are_in_the_key() -> None:
    base = cache_key(DOC, "Q", None, "user", {"x-hasura-user-id": "1"})
    assert cache_key(DOC, "Q", None, "editor", {"x-hasura-user-id": "1"}) != base
    assert cache_key(DOC, "Q", None, "user", {"x-hasura-user-id": "1", "x-hasura-org-id": "9"}) != base
    assert cache_key(DOC, "Q", None, "user", {}) != base


def test_the_same_session_in_another_order_is_the_same_key() -> None:
    one = cache_key(
        DOC, "Q", {"b": 1, "a": {"y": 2, "x": 1}}, "user", {"x-hasura-user-id": "1", "x-hasura-org-id": "9"}
    )
    two = cache_key(
        DOC, "Q", {"a": {"x": 1, "y": 2}, "b": 1}, "user", {"x-hasura-org-id": "9", "x-hasura-user-id": "1"}
    )
    assert one == two


def test_document_operation_variables_and_vary_headers_change_the_key() -> None:
    base = cache_key(DOC, "Q", {"id": 1}, "user", {})
    assert cache_key("query Q {\n  b\n}", "Q", {"id": 1}, "user", {}) != base
    assert cache_key(DOC, "R", {"id": 1}, "user", {}) != base
    assert cache_key(DOC, "Q", {"id": 2}, "user", {}) != base
    assert cache_key(DOC, "Q", {"id": 1}, "user", {}, vary={"cookie": "a=1"}) != base
    assert cache_key(DOC, "Q", None, "user", {}) == cache_key(DOC, "Q", {}, "user", {})


def test_variables_that_cannot_be_encoded_raise_type_error() -> None:
    with pytest.raises(TypeError):
        cache_key(DOC, "Q", {"x": 2**70}, "user", {})


def test_rules_match_by_exact_operation_name_first_rule_wins() -> None:
    rules = [
        CacheRule(operation_name="Top", ttl=120),
        CacheRule(operation_name="Top", ttl=5),
        CacheRule(operation_name="B"),
    ]
    assert match_rule(rules, "Top") == 120
    assert match_rule(rules, "B") == 60
    assert match_rule(rules, "top") is None
    assert match_rule(rules, None) is None
    assert match_rule([], "Top") is None


@pytest.mark.parametrize(
    "values",
    [
        {"operation_name": "Q", "ttl": 0},
        {"operation_name": "Q", "ttl": 301},
        {"operation_name": "", "ttl": 10},
        {"operation_name": "not a name", "ttl": 10},
        {"operation_name": "Q", "ttl": 10, "role": "user"},
    ],
)
def test_invalid_rules_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        CacheRule.model_validate(values)


def test_keys_stay_exact_past_the_bounded_digest_memo() -> None:
    """Digests are remembered per canonical encoding (bounded); every key is still the SHA-256 of it."""
    for user in range(key_module._DIGESTS_MAX + 10):
        session = {"x-hasura-user-id": str(user)}
        canonical = {
            "k": KEY_VERSION,
            "document": "{ a }",
            "operation": None,
            "variables": {},
            "role": "user",
            "session": session,
            "vary": {},
        }
        expected = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
        assert cache_key("{ a }", None, None, "user", session) == expected
        assert cache_key("{ a }", None, {}, "user", session) == expected  # remembered: the same answer
    assert len(key_module._DIGESTS) <= key_module._DIGESTS_MAX
