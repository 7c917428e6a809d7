"""Authenticate's memo of Authorization values: only values whose token verified, within its bounds.

The memo maps a header value to the token in it, so that a repeated value is not parsed again. A value
is remembered only once its token verified (a stranger sending forged or malformed tokens adds
nothing), at most as many values as the session memo keeps users, and at most as many bytes as the
verifier's cache keeps characters. These tests read the memo itself (``_tokens``): its size is the
property under test, and nothing else shows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from edge.auth.jwt_config import parse_jwt_secret
from edge.auth.jwt_verifier import MAX_CACHE_CHARS, JWTVerifier
from edge.errors import AuthenticationError, InvalidAuthHeader
from edge.pipeline.authenticate import Authenticate
from edge.session import Identity
from tests.support.tokens import JWT_SECRET_JSON, hasura_claims, mint

MEMO_VALUES = 10_000  # the session memo's size, which the Authorization memo shares


def authenticate(clock: Callable[[], float] = time.time) -> Authenticate:
    configs = parse_jwt_secret(JWT_SECRET_JSON)
    return Authenticate(verifier=JWTVerifier(configs, clock=clock), configs=configs, unauthorized_role=None)


async def identify(stage: Authenticate, authorization: bytes) -> Identity:
    headers = [(b"authorization", authorization)]
    return await stage.identify(headers, first_values=dict(headers))


def bearer(token: str) -> bytes:
    return f"Bearer {token}".encode()


async def test_a_verified_value_is_remembered_and_gives_the_same_session_again() -> None:
    stage = authenticate()
    value = bearer(mint(hasura_claims("user-7")))
    first = await identify(stage, value)
    assert list(stage._tokens) == [value]
    again = await identify(stage, value)
    assert again is first
    assert again.session.user_id == "user-7"


@pytest.mark.parametrize(
    "value",
    [
        bearer(mint(hasura_claims("user-7"), key="not-the-edge's-key-0123456789abcdef-0123456789")),
        bearer(mint(hasura_claims("user-7"), expires_in=-3600)),
        bearer("a.b.c"),
        b"Bearer a b",
        b"Basic dXNlcjpwYXNz",
    ],
    ids=["forged", "expired", "not-a-jwt", "two-tokens", "not-bearer"],
)
async def test_a_value_whose_token_does_not_verify_is_never_remembered(value: bytes) -> None:
    stage = authenticate()
    for _ in range(2):  # judged alike the second time: nothing was kept from the first
        with pytest.raises((AuthenticationError, InvalidAuthHeader)):
            await identify(stage, value)
    assert stage._tokens == {}


async def test_a_remembered_value_whose_token_has_expired_since_is_refused() -> None:
    clock = [1_800_000_000.0]
    stage = authenticate(lambda: clock[0])
    token = mint(hasura_claims("user-7"), iat=int(clock[0]), exp=int(clock[0]) + 60)
    await identify(stage, bearer(token))
    assert list(stage._tokens) == [bearer(token)]
    clock[0] += 3600
    with pytest.raises(AuthenticationError):
        await identify(stage, bearer(token))


async def test_the_memo_keeps_at_most_as_many_values_as_the_session_memo_then_starts_over() -> None:
    stage = authenticate()
    values = [bearer(mint(hasura_claims(f"user-{index}"))) for index in range(MEMO_VALUES + 1)]
    for value in values[:MEMO_VALUES]:
        await identify(stage, value)
    assert len(stage._tokens) == MEMO_VALUES
    await identify(stage, values[-1])
    assert list(stage._tokens) == [values[-1]]


async def test_the_memo_keeps_at_most_the_verifier_caches_bytes_then_starts_over() -> None:
    stage = authenticate()
    padding = "p" * 11_000  # a token of about 15 KiB (base64): the byte bound comes long before the count
    count = MAX_CACHE_CHARS // 14_000 + 2
    kept_most = 0
    for index in range(count):
        await identify(stage, bearer(mint(hasura_claims(f"user-{index}"), pad=padding)))
        kept = sum(len(value) for value in stage._tokens)
        assert kept <= MAX_CACHE_CHARS
        kept_most = max(kept_most, kept)
    assert len(stage._tokens) < count  # it started over at least once
    assert kept_most > MAX_CACHE_CHARS - 16 * 1024  # and only when the next value would not fit


async def test_a_value_remembered_twice_is_counted_once() -> None:
    """Two requests with the same new value, both verified before either was remembered (a JWKS fetch
    in between), both remember it: its bytes count once toward the bound."""
    stage = authenticate()
    value = bearer(mint(hasura_claims("user-7")))
    await identify(stage, value)
    stage._remember(value, value[7:].decode())
    assert list(stage._tokens) == [value]
    assert stage._token_bytes == len(value)
