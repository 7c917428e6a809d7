"""The key format: what is generated, and that anything else is refused as ``invalid-api-key`` before any I/O."""

from __future__ import annotations

import hashlib
import re

import pytest

from edge.errors import AuthenticationError
from edge.keys import InvalidApiKey, generate_key, hash_key, parse_key
from edge.keys.key_format import KEY_LENGTH

GOOD = "hek_abcdefgh23_" + "A" * 20 + "b-_9" + "z" * 19


def test_generated_keys_have_the_documented_shape_and_are_unique() -> None:
    keys = [generate_key() for _ in range(200)]
    for key in keys:
        assert re.fullmatch(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}", key.key)
        assert key.key.split("_", 2)[1] == key.key_id
        assert len(key.key) == KEY_LENGTH == 58
    assert len({key.key for key in keys}) == 200
    assert len({key.key_id for key in keys}) == 200


def test_a_generated_key_parses_back_to_its_key_id() -> None:
    key = generate_key()
    assert parse_key(key.key) == key


def test_a_secret_containing_underscores_still_splits_at_the_key_id() -> None:
    parsed = parse_key(GOOD)
    assert parsed.key_id == "abcdefgh23"


def test_the_hash_is_the_hex_sha256_of_the_whole_key() -> None:
    key = generate_key()
    assert hash_key(key.key) == hashlib.sha256(key.key.encode()).hexdigest() == key.key_hash


def test_repr_never_shows_the_key() -> None:
    key = generate_key()
    assert key.key not in repr(key) and key.key.split("_", 2)[2] not in repr(key)


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param("", id="empty"),
        pytest.param("hek_", id="prefix-only"),
        pytest.param("hek_abcdefgh23", id="no-secret"),
        pytest.param("hek_abcdefgh23_", id="empty-secret"),
        pytest.param(GOOD[:-1], id="secret-too-short"),
        pytest.param(GOOD + "A", id="secret-too-long"),
        pytest.param(GOOD + "\n", id="trailing-newline"),
        pytest.param(" " + GOOD, id="leading-space"),
        pytest.param(GOOD * 1000, id="very-long"),
        pytest.param("x" * 100_000, id="megabyte-of-junk"),
        pytest.param("HEK_" + GOOD[4:], id="upper-case-prefix"),
        pytest.param("hex_" + GOOD[4:], id="wrong-prefix"),
        pytest.param("sk_live_" + GOOD[8:], id="foreign-prefix"),
        pytest.param("hek-abcdefgh23-" + GOOD[15:], id="wrong-separators"),
        pytest.param("hek_ABCDEFGH23_" + GOOD[15:], id="upper-case-key-id"),
        pytest.param("hek_abcdefgh01_" + GOOD[15:], id="key-id-outside-base32"),
        pytest.param("hek_abcdefgh2_" + GOOD[14:] + "A", id="key-id-too-short"),
        pytest.param("hek_abcdefgh234" + GOOD[15:], id="key-id-too-long"),
        pytest.param("hek_abcdéfgh23_" + GOOD[15:], id="non-ascii-key-id"),
        pytest.param(GOOD[:-1] + "é", id="non-ascii-secret"),
        pytest.param(GOOD[:-1] + "٣", id="non-ascii-digit"),
        pytest.param(GOOD[:-1] + "=", id="padding-character"),
        pytest.param(GOOD[:-1] + "+", id="standard-base64-character"),
        pytest.param(GOOD[:-1] + "\x00", id="nul"),
        pytest.param("Bearer " + GOOD, id="scheme-prefixed"),
    ],
)
def test_malformed_keys_are_invalid_api_key(presented: str) -> None:
    with pytest.raises(InvalidApiKey) as caught:
        parse_key(presented)
    error = caught.value
    assert isinstance(error, AuthenticationError)
    assert (error.status, error.code) == (401, "invalid-api-key")
    assert presented not in error.message or presented == ""
    assert b"hek_" not in error.body()
