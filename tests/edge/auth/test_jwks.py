"""JWKSCache against a real loopback HTTP server that counts fetches; time comes from a fake clock."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from edge.auth.jwks import JWKSCache, VerificationKey, key_from_jwk, keys_from_jwks
from tests.support.servers import RunningServer, free_loopback_socket, start_server

from .helpers import Clock, JWKSApp, b64, ec_pair, ed_pair, rsa_pair

RSA = rsa_pair()
RSA_2 = rsa_pair()
EC = ec_pair()
ED = ed_pair()
T0 = 1000.0


@pytest.fixture
def idp() -> Iterator[tuple[JWKSApp, RunningServer]]:
    app = JWKSApp()
    app.serve_keys(RSA.jwk("rsa-1"), EC.jwk("ec-1"))
    # date_header=False: the Expires tests send their own Date header, and only one.
    running = start_server(app, lifespan="off", date_header=False)
    try:
        yield app, running
    finally:
        running.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def make_cache(url: str, client: httpx.AsyncClient, clock: Clock, **kwargs: Any) -> JWKSCache:
    options: dict[str, Any] = {"min_refresh_interval": 30.0, "poll_interval": 300.0, "default_ttl": 300.0}
    options.update(kwargs)
    return JWKSCache(url, client=client, clock=clock, **options)


def kids(keys: list[VerificationKey]) -> set[str | None]:
    return {key.kid for key in keys}


# --- fetching ---------------------------------------------------------------------------------


async def test_initial_fetch(idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient) -> None:
    app, running = idp
    cache = make_cache(f"{running.url}/jwks", client, Clock(T0))
    await cache.start()
    try:
        assert app.hits == 1
        assert cache.has_keys
        assert [(k.alg, k.kid) for k in cache.keys_for("ec-1")] == [("ES256", "ec-1")]
        # An RSA JWK without alg may verify RS256/384/512 (one pinned key object each).
        assert [k.alg for k in cache.keys_for("rsa-1")] == ["RS256", "RS384", "RS512"]
        assert kids(cache.keys_for(None)) == {"rsa-1", "ec-1"}
        assert cache.keys_for("nope") == []
        assert cache.next_refresh_at == T0 + 300
    finally:
        await cache.aclose()


async def test_key_rotation_one_refetch(idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient) -> None:
    app, running = idp
    clock = Clock(T0)
    cache = make_cache(f"{running.url}/jwks", client, clock)
    await cache.refresh()
    app.serve_keys(RSA_2.jwk("rsa-2"))
    # Within min_refresh_interval of the last fetch: no refetch, the kid stays unknown.
    assert await cache.refresh_for_unknown_kid("rsa-2") is False
    assert app.hits == 1
    clock.advance(30)
    assert await cache.refresh_for_unknown_kid("rsa-2") is True
    assert app.hits == 2
    assert kids(cache.keys_for("rsa-2")) == {"rsa-2"}
    assert cache.keys_for("rsa-1") == []  # rotated out
    # A known kid never refetches.
    clock.advance(100)
    assert await cache.refresh_for_unknown_kid("rsa-2") is True
    assert app.hits == 2


async def test_random_kids_cause_at_most_two_fetches(
    idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient
) -> None:
    app, running = idp
    clock = Clock(T0)
    cache = make_cache(f"{running.url}/jwks", client, clock)
    # Nothing fetched yet: the first unknown kid may fetch, concurrent ones share that fetch.
    random_kids = [secrets.token_hex(8) for _ in range(100)]
    results = await asyncio.gather(*(cache.refresh_for_unknown_kid(kid) for kid in random_kids))
    assert not any(results)
    assert app.hits == 1
    for kid in random_kids:  # sequential, same instant: rate-limited
        assert await cache.refresh_for_unknown_kid(kid) is False
    clock.advance(29.9)
    for kid in random_kids:
        await cache.refresh_for_unknown_kid(kid)
    assert app.hits == 1
    clock.advance(0.2)
    for kid in random_kids:
        await cache.refresh_for_unknown_kid(kid)
    assert app.hits == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"keys": []}'),
        (404, b"not found"),
        (200, b"<html>maintenance</html>"),
        (200, b'{"keys": "nope"}'),
        (200, b"[]"),
        (200, b'{"keys": []}'),
        (200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'),
        (200, b"[" * 100_000),
    ],
)
async def test_idp_errors_keep_last_good_keys(
    status: int, body: bytes, idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient
) -> None:
    app, running = idp
    clock = Clock(T0)
    cache = make_cache(f"{running.url}/jwks", client, clock)
    assert await cache.refresh() is True
    generation = cache.generation
    app.status, app.body = status, body
    clock.advance(300)
    assert await cache.refresh_if_due() is False
    assert app.hits == 2
    assert kids(cache.keys_for(None)) == {"rsa-1", "ec-1"}
    assert cache.generation == generation
    # A failure schedules a retry after min_refresh_interval, not after the full TTL.
    assert cache.next_refresh_at == clock.now + 30


async def test_oversized_document_is_refused(idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient) -> None:
    app, running = idp
    cache = make_cache(f"{running.url}/jwks", client, Clock(T0))
    app.body = b'{"keys": [], "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert await cache.refresh() is False
    assert not cache.has_keys


async def test_connection_refused_keeps_last_good_keys(
    idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    app, running = idp
    clock = Clock(T0)
    cache = make_cache(f"{running.url}/jwks", client, clock)
    assert await cache.refresh() is True
    running.stop()  # the IdP goes away: connection refused from now on
    clock.advance(300)
    with caplog.at_level(logging.WARNING, logger="edge.auth.jwks"):
        assert await cache.refresh_if_due() is False
    assert "keeping 2 known key id(s)" in caplog.text
    assert kids(cache.keys_for(None)) == {"rsa-1", "ec-1"}


async def test_start_with_idp_down_does_not_raise_and_recovers(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    sock = free_loopback_socket()  # bound, never listening: connection refused
    port = sock.getsockname()[1]
    clock = Clock(T0)
    cache = make_cache(f"http://127.0.0.1:{port}/jwks", client, clock)
    try:
        with caplog.at_level(logging.WARNING, logger="edge.auth.jwks"):
            await cache.start()
        assert "JWKS fetch" in caplog.text
        assert not cache.has_keys
        assert cache.fetch_count == 1
    finally:
        await cache.aclose()
        sock.close()


async def test_redirects_are_not_followed(client: httpx.AsyncClient) -> None:
    target = JWKSApp()
    target.serve_keys(RSA.jwk("rsa-1"))
    with_target = start_server(target, lifespan="off")
    redirect = JWKSApp(status=302)
    redirect.headers = [(b"location", f"{with_target.url}/jwks".encode())]
    with_redirect = start_server(redirect, lifespan="off")
    try:
        cache = make_cache(f"{with_redirect.url}/jwks", client, Clock(T0))
        assert await cache.refresh() is False
        assert redirect.hits == 1
        assert target.hits == 0
    finally:
        with_target.stop()
        with_redirect.stop()


# --- scheduling from caching headers ----------------------------------------------------------


def _http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "ttl"),
    [
        ({}, 300),  # default_ttl
        ({"cache-control": "public, max-age=120"}, 120),
        ({"cache-control": "max-age=120, s-maxage=60"}, 60),
        ({"cache-control": "max-age=120, must-revalidate"}, 120),
        ({"cache-control": "must-revalidate"}, 30),  # clamped up to min_refresh_interval
        ({"cache-control": "no-cache"}, 30),
        ({"cache-control": "no-store, max-age=120"}, 30),
        ({"cache-control": "max-age=5"}, 30),
        ({"cache-control": "max-age=86400"}, 600),  # clamped down to poll_interval
        ({"cache-control": "max-age=oops"}, 300),
        ({"expires": _http_date(1_700_000_200), "date": _http_date(1_700_000_000)}, 200),
        ({"expires": "garbage", "date": _http_date(1_700_000_000)}, 300),
        ({"expires": _http_date(1_699_999_000), "date": _http_date(1_700_000_000)}, 30),
        ({"cache-control": "max-age=90", "expires": _http_date(1_700_000_200)}, 90),
    ],
)
async def test_caching_headers_schedule_the_refresh(
    headers: dict[str, str], ttl: float, idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient
) -> None:
    app, running = idp
    app.headers = [(name.encode(), value.encode()) for name, value in headers.items()]
    clock = Clock(T0)
    cache = make_cache(f"{running.url}/jwks", client, clock, poll_interval=600.0)
    await cache.refresh()
    assert cache.next_refresh_at == T0 + ttl
    clock.advance(ttl - 0.5)
    assert await cache.refresh_if_due() is False
    assert app.hits == 1
    clock.advance(0.5)
    assert await cache.refresh_if_due() is True
    assert app.hits == 2


async def test_background_refresh_runs_and_stops(idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient) -> None:
    app, running = idp
    clock = Clock(T0)
    cache = make_cache(f"{running.url}/jwks", client, clock, min_refresh_interval=0.0, poll_interval=0.05)
    await cache.start()
    try:
        clock.advance(1)
        for _ in range(100):
            if app.hits >= 2:
                break
            await asyncio.sleep(0.02)
        assert app.hits >= 2
    finally:
        await cache.aclose()
    hits = app.hits
    clock.advance(1)
    await asyncio.sleep(0.15)
    assert app.hits == hits


# --- which keys are kept ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwk", "expected"),
    [
        (RSA.jwk("a"), ["RS256", "RS384", "RS512"]),
        (RSA.jwk("a", alg="RS384"), ["RS384"]),
        (RSA.jwk("a", use="sig"), ["RS256", "RS384", "RS512"]),
        (RSA.jwk("a", key_ops=["verify"]), ["RS256", "RS384", "RS512"]),
        (EC.jwk("a"), ["ES256"]),
        (EC.jwk("a", alg="ES256"), ["ES256"]),
        (ED.jwk("a"), ["EdDSA"]),
        (ED.jwk("a", alg="EdDSA"), ["EdDSA"]),
        (ec_pair().jwk("a", crv="P-384"), []),  # the point is not on P-384
        (RSA.jwk("a", use="enc"), []),
        (RSA.jwk("a", key_ops=["encrypt"]), []),
        (RSA.jwk("a", alg="PS256"), []),
        (RSA.jwk("a", alg="HS256"), []),
        (RSA.jwk("a", alg="none"), []),
        (RSA.jwk(kid=None, kid_=1) | {"kid": 7}, []),
        (rsa_pair(1024).jwk("small"), []),
        (EC.jwk("a", alg="ES512"), []),
        (EC.jwk("a", crv="P-999"), []),
        (EC.jwk("a", x="!!!"), []),
        (ED.jwk("a", crv="Ed448"), []),
        (ED.jwk("a", x=b64(b"short")), []),
        ({"kty": "oct", "k": b64(b"k" * 32), "kid": "a"}, []),
        ({"kty": "RSA", "kid": "a"}, []),
        ({"kty": "RSA", "n": 5, "e": "AQAB"}, []),
        ({}, []),
        ("not a jwk", []),
        (None, []),
    ],
)
def test_key_from_jwk(jwk: Any, expected: list[str]) -> None:
    assert [key.alg for key in key_from_jwk(jwk)] == expected


def test_private_members_are_ignored() -> None:
    jwk = RSA.jwk("a", d="AAAA", p="AAAA")
    (first, *_) = key_from_jwk(jwk)
    assert first.key.is_public()
    assert "AAAA" not in repr(first)


def test_keys_from_jwks_indexes_by_kid_and_skips_bad_keys() -> None:
    index = keys_from_jwks({"keys": [RSA.jwk("r"), EC.jwk(), {"kty": "oct"}, "junk", ED.jwk("r")]})
    assert {kid: [k.alg for k in keys] for kid, keys in index.items()} == {
        "r": ["RS256", "RS384", "RS512", "EdDSA"],
        None: ["ES256"],
    }
    with pytest.raises(ValueError):
        keys_from_jwks({"nokeys": []})


async def test_kidless_keys_are_candidates_for_any_kid(client: httpx.AsyncClient) -> None:
    app = JWKSApp()
    app.serve_keys(EC.jwk(), RSA.jwk("rsa-1"))
    running = start_server(app, lifespan="off")
    try:
        cache = make_cache(f"{running.url}/jwks", client, Clock(T0))
        await cache.refresh()
        assert kids(cache.keys_for("rsa-1")) == {"rsa-1", None}
        assert kids(cache.keys_for("whatever")) == {None}
    finally:
        running.stop()


async def test_generation_changes_only_with_the_key_set(
    idp: tuple[JWKSApp, RunningServer], client: httpx.AsyncClient
) -> None:
    """A periodic refresh that brings the same keys must not invalidate the verifier's token cache."""
    app, running = idp
    cache = make_cache(f"{running.url}/jwks", client, Clock(T0))
    await cache.refresh()
    generation = cache.generation
    await cache.refresh()
    assert cache.generation == generation
    app.serve_keys(RSA_2.jwk("rsa-2"))
    await cache.refresh()
    assert cache.generation == generation + 1


async def test_userinfo_is_not_logged(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    sock = free_loopback_socket()
    port = sock.getsockname()[1]
    cache = make_cache(f"http://user:hunter2@127.0.0.1:{port}/jwks?token=abc", client, Clock(T0))
    try:
        with caplog.at_level(logging.WARNING, logger="edge.auth.jwks"):
            assert await cache.refresh() is False
    finally:
        sock.close()
    assert f"http://127.0.0.1:{port}/jwks" in caplog.text
    assert "hunter2" not in caplog.text and "token=abc" not in caplog.text
