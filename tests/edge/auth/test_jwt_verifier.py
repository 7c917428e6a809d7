"""JWTVerifier with real tokens: happy paths, time claims, aud/iss, and the JWT attack catalogue."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from jose import jwt as jose_jwt

from edge.auth.jwt_config import JWTConfig, parse_jwt_secret
from edge.auth.jwt_verifier import JWTVerifier, VerifiedToken
from edge.errors import AuthenticationError, InvalidJWT, InvalidJWTClaims, MissingRoleClaims
from tests.support.outside_effects import recording
from tests.support.servers import RunningServer, start_server

from .helpers import (
    HS_KEY,
    NAMESPACE,
    NOW,
    Clock,
    JWKSApp,
    KeyPair,
    b64,
    ec_pair,
    ed_pair,
    forge,
    hasura,
    hs_sign,
    mint,
    payload,
    rsa_pair,
)

RSA = rsa_pair()
OTHER_RSA = rsa_pair()
EC = ec_pair()
ED = ed_pair()


def configs(**fields: Any) -> tuple[JWTConfig, ...]:
    secret = {"type": "HS256", "key": HS_KEY, **fields}
    return parse_jwt_secret(secret)


def verifier(*cfgs: JWTConfig, clock: Clock | None = None, **kwargs: Any) -> JWTVerifier:
    return JWTVerifier(cfgs or configs(), clock=clock or Clock(), **kwargs)


async def rejected(v: JWTVerifier, token: str, reason: str | None = None) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as info:
        await v.verify(token)
    error = info.value
    assert error.status == 401
    if reason is not None:
        assert isinstance(error, InvalidJWT)
        assert error.message == f"Could not verify JWT: {reason}"
    # Messages never quote the token or a key.
    if len(token) >= 8:
        assert token not in error.message and token[-8:] not in error.message
    assert HS_KEY not in error.message
    return error


# --- happy paths ------------------------------------------------------------------------------


async def test_hs256_valid() -> None:
    token = mint(payload(iss="me"))
    result = await verifier().verify(token)
    assert isinstance(result, VerifiedToken)
    assert result.expires_at == NOW + 300
    assert result.issuer == "me"
    assert result.claims.default_role == "user"
    assert result.claims.allowed_roles == ("user", "editor")
    assert dict(result.claims.session_variables) == {"x-hasura-user-id": "42"}


@pytest.mark.parametrize(("pair", "type_"), [(RSA, "RS256"), (EC, "ES256"), (ED, "Ed25519")])
async def test_asymmetric_valid(pair: KeyPair, type_: str) -> None:
    (config,) = parse_jwt_secret({"type": type_, "key": pair.public_pem})
    result = await verifier(config).verify(mint(payload(), key=pair, alg=pair.alg))
    assert result.claims.default_role == "user"
    assert result.config is config


@pytest.mark.parametrize(("pair", "type_"), [(RSA, "RS256"), (EC, "ES256"), (ED, "Ed25519")])
async def test_asymmetric_wrong_key(pair: KeyPair, type_: str) -> None:
    other = {"RS256": OTHER_RSA, "ES256": ec_pair(), "Ed25519": ed_pair()}[type_]
    (config,) = parse_jwt_secret({"type": type_, "key": pair.public_pem})
    await rejected(verifier(config), mint(payload(), key=other, alg=pair.alg), "JWSError JWSInvalidSignature")


async def test_wrong_hs_secret() -> None:
    token = mint(payload(), key="another-secret-that-is-long-enough-000")
    await rejected(verifier(), token, "JWSError JWSInvalidSignature")


async def test_numeric_user_id_is_invalid_claims() -> None:
    token = mint(payload(**{NAMESPACE: hasura(user_id=42)}))
    error = await rejected(verifier(), token)
    assert isinstance(error, InvalidJWTClaims)
    assert error.code == "jwt-invalid-claims"


async def test_missing_role_claims() -> None:
    token = mint(payload(**{NAMESPACE: {"x-hasura-user-id": "1"}}))
    error = await rejected(verifier(), token)
    assert isinstance(error, MissingRoleClaims)


# --- time claims ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skew", "body", "reason"),
    [
        (0, payload(exp=NOW - 1), "JWTExpired"),
        (0, payload(exp=NOW), "JWTExpired"),
        (60, payload(exp=NOW - 61), "JWTExpired"),
        (0, payload(exp=None), "JWTClaimsError missing exp claim"),
        (0, payload(exp="1900000000"), "JWTClaimsError invalid exp claim"),
        (0, payload(exp=True), "JWTClaimsError invalid exp claim"),
        (0, payload(exp=None, expires=NOW + 10), "JWTClaimsError missing exp claim"),
        (0, payload(nbf=NOW + 5), "JWTNotYetValid"),
        (60, payload(nbf=NOW + 61), "JWTNotYetValid"),
        (0, payload(nbf="soon"), "JWTClaimsError invalid nbf claim"),
        (0, payload(iat=NOW + 5), "JWTIssuedAtFuture"),
        (60, payload(iat=NOW + 61), "JWTIssuedAtFuture"),
        (0, payload(iat=None), "JWTClaimsError invalid iat claim"),
    ],
)
async def test_time_claims_rejected(skew: float, body: dict[str, Any], reason: str) -> None:
    await rejected(verifier(*configs(allowed_skew=skew)), mint(body), reason)


@pytest.mark.parametrize(
    ("skew", "body"),
    [
        (60, payload(exp=NOW - 30)),  # Hasura's AbstractTestJwtExpirySkew: expired 30 s ago, skew 60
        (60, payload(exp=NOW - 59.5)),
        (0, payload(exp=NOW + 0.5)),
        (60, payload(nbf=NOW + 59)),
        (0, payload(nbf=NOW)),
        (60, payload(iat=NOW + 59)),
        (0, payload(iat=NOW)),
    ],
)
async def test_time_claims_within_skew(skew: float, body: dict[str, Any]) -> None:
    await verifier(*configs(allowed_skew=skew)).verify(mint(body))


@pytest.mark.parametrize("raw_exp", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
async def test_non_finite_exp(raw_exp: str) -> None:
    body = json.dumps(payload(exp=None)).replace("{", '{"exp": ' + raw_exp + ", ", 1)
    token = hs_sign({"alg": "HS256", "typ": "JWT"}, json.loads(body), HS_KEY.encode())
    await rejected(verifier(), token, "JWTClaimsError invalid exp claim")


# --- audience / issuer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "body", "reason"),
    [
        ({"audience": "api"}, payload(aud="other"), "JWTNotInAudience"),
        ({"audience": ["api", "web"]}, payload(aud=["other", "x"]), "JWTNotInAudience"),
        ({"audience": "api"}, payload(), "JWTNotInAudience"),
        ({"audience": "api"}, payload(aud=None), "JWTNotInAudience"),
        ({"audience": "api"}, payload(aud=["API"]), "JWTNotInAudience"),
        ({"audience": "api"}, payload(aud={"api": 1}), "JWTNotInAudience"),
        ({"issuer": "https://idp"}, payload(iss="https://evil"), "JWTNotInIssuer"),
        ({"issuer": "https://idp"}, payload(), "JWTNotInIssuer"),  # stricter than Hasura
        ({"issuer": "https://idp"}, payload(iss=["https://idp"]), "JWTNotInIssuer"),
    ],
)
async def test_aud_iss_rejected(config: dict[str, Any], body: dict[str, Any], reason: str) -> None:
    await rejected(verifier(*configs(**config)), mint(body), reason)


@pytest.mark.parametrize(
    ("config", "body"),
    [
        ({"audience": "api"}, payload(aud="api")),
        ({"audience": ["api", "web"]}, payload(aud=["other", "web"])),
        ({}, payload(aud="anything")),  # no audience configured: no check, like Hasura
        ({}, payload(iss="anyone")),
        ({"issuer": "https://idp", "audience": "api"}, payload(iss="https://idp", aud="api")),
    ],
)
async def test_aud_iss_accepted(config: dict[str, Any], body: dict[str, Any]) -> None:
    await verifier(*configs(**config)).verify(mint(body))


# --- the attack catalogue (security.md 1.8) ---------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "AAAA"])
@pytest.mark.parametrize("type_", ["HS256", "RS256"])
async def test_alg_none(alg: str, signature: str, type_: str) -> None:
    key = HS_KEY if type_ == "HS256" else RSA.public_pem
    (config,) = parse_jwt_secret({"type": type_, "key": key})
    token = forge({"alg": alg, "typ": "JWT"}, payload(), signature)
    await rejected(verifier(config), token)


async def test_empty_and_stripped_signatures() -> None:
    good = mint(payload())
    head, body, _ = good.split(".")
    v = verifier()
    for token in (f"{head}.{body}.", f"{head}.{body}", f"{head}.{body}.{'A' * 43}", good[:-4], good + "AAAA"):
        await rejected(v, token)
    await v.verify(good)


async def test_last_four_characters_cut_rs256() -> None:
    (config,) = parse_jwt_secret({"type": "RS256", "key": RSA.public_pem})
    good = mint(payload(), key=RSA, alg="RS256")
    await rejected(verifier(config), good[:-4])


async def test_hs256_signed_with_the_rs_public_key() -> None:
    """jwt_tool -X k: the RS public PEM used as HMAC secret. The RS config pins RS256."""
    (config,) = parse_jwt_secret({"type": "RS256", "key": RSA.public_pem})
    for secret in (RSA.public_pem, RSA.public_pem.strip(), RSA.public_pem.replace("\n", "")):
        token = hs_sign({"alg": "HS256", "typ": "JWT"}, payload(), secret.encode())
        await rejected(verifier(config), token, "JWSError JWSInvalidAlgorithm")


async def test_blank_and_common_hmac_secrets() -> None:
    v = verifier()
    for secret in (b"", b"secret", b"password", b"\x00"):
        await rejected(v, hs_sign({"alg": "HS256", "typ": "JWT"}, payload(), secret))


async def test_other_hs_sizes_are_not_accepted_for_an_hs256_config() -> None:
    token = mint(payload(), alg="HS512")
    await rejected(verifier(), token, "JWSError JWSInvalidAlgorithm")


async def test_embedded_jwk_header_is_ignored() -> None:
    """CVE-2018-0114: the attacker signs with their key and embeds its public JWK."""
    attacker = rsa_pair()
    (config,) = parse_jwt_secret({"type": "RS256", "key": RSA.public_pem})
    token = mint(payload(), key=attacker, alg="RS256", headers={"jwk": attacker.jwk("k1"), "kid": "k1"})
    await rejected(verifier(config), token, "JWSError JWSInvalidSignature")


async def test_crit_header_refused() -> None:
    token = mint(payload(), headers={"crit": ["exp"], "exp": 1})
    await rejected(verifier(), token, "JWSError unsupported critical header")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "Bearer x.y.z",
        "é.é.é",
        f"{b64('not json')}.{b64('{}')}.AAAA",
        f"{b64('[]')}.{b64('{}')}.AAAA",
        f"{b64('{}')}.{b64('{}')}.AAAA",
        f"{b64({'alg': 'HS256'})}.{b64('[' * 10_000)}.AAAA",
        f"{b64({'alg': 'HS256'})}.{b64('[]')}.AAAA",
        f"{b64({'alg': ['HS256']})}.{b64('{}')}.AAAA",
        f"{b64({'alg': 'HS256'})}.@@@.AAAA",
        b64({"alg": "HS256"}) + "." + b64(bytes([0xFF, 0xFE])) + ".AAAA",
    ],
)
async def test_malformed_tokens(token: str) -> None:
    await rejected(verifier(), token)


async def test_payload_not_an_object_even_when_signed() -> None:
    for body in ("[1, 2]", '"x"', "null", "[" * 5000 + "]" * 5000):
        signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(body)}"
        mac = hmac.new(HS_KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
        await rejected(verifier(), f"{signing_input}.{b64(mac)}")


async def test_oversized_token_is_rejected_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an oversized token must not be parsed")

    monkeypatch.setattr(jose_jwt, "get_unverified_header", explode)
    monkeypatch.setattr(jose_jwt, "decode", explode)
    big = mint(payload(pad="x" * 20_000))
    assert len(big) > 16 * 1024
    v = verifier()
    await rejected(v, big, "token too large")
    await rejected(v, "A" * (64 * 1024), "token too large")


KID_INJECTIONS = [
    "",
    "../../dev/null",
    "/dev/null",
    "|sleep 10",
    "x' UNION SELECT '1';--",
    "http://127.0.0.1:1/jwks",
    "\x00",
]


@pytest.mark.parametrize("kid", [*KID_INJECTIONS, 123, ["a"], {"a": 1}, None], ids=repr)
async def test_kid_injection_static_key(kid: Any) -> None:
    """With a static key, kid is ignored: an empty-secret or /dev/null-signed token still fails, and the
    kid is never used as a path, a command or a URL (no file opened, no process started, no connection)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    v = verifier()
    await rejected(v, mint(payload(), headers={"kid": "warm-up"}) + "x")  # first use may import lazily
    with recording() as effects:
        for secret in (b"", b"\x00"):
            await rejected(v, hs_sign(header, payload(), secret), "JWSError JWSInvalidSignature")
    assert effects == []


# --- header-supplied key URLs must cause zero outbound requests ---------------------------------


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A raw TCP listener on 127.0.0.1:0 recording every connection."""
    hits: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(1024))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def jwks_server() -> Iterator[tuple[JWKSApp, RunningServer]]:
    app = JWKSApp()
    app.serve_keys(RSA.jwk("rsa-1"), EC.jwk("ec-1"), ED.jwk("ed-1"))
    running = start_server(app, lifespan="off")
    try:
        yield app, running
    finally:
        running.stop()


@pytest.mark.parametrize("header", ["jku", "x5u"])
async def test_jku_and_x5u_cause_no_request(
    header: str, listener: tuple[str, list[bytes]], jwks_server: tuple[JWKSApp, RunningServer]
) -> None:
    url, hits = listener
    app, running = jwks_server
    attacker = rsa_pair()
    headers = {header: f"{url}/jwks.json", "kid": "attacker", "jwk": attacker.jwk("attacker")}
    token = mint(payload(), key=attacker, alg="RS256", headers=headers)
    static = parse_jwt_secret({"type": "RS256", "key": RSA.public_pem})
    remote = parse_jwt_secret({"jwk_url": f"{running.url}/jwks"})
    async with httpx.AsyncClient() as client:
        for cfgs in (static, remote):
            v = JWTVerifier(cfgs, http_client=client, clock=Clock())
            await v.start()
            try:
                await rejected(v, token)
                # Same header on a token signed by the real key: accepted, and still no fetch.
                kid = "rsa-1" if cfgs is remote else None
                good = mint(payload(), key=RSA, alg="RS256", headers={header: f"{url}/x", "kid": kid})
                await v.verify(good)
            finally:
                await v.aclose()
    await asyncio.sleep(0.05)
    assert hits == []
    assert app.hits == 1  # only the configured URL, once at start


# --- JWKS-backed verification -----------------------------------------------------------------


@pytest.mark.parametrize(("pair", "kid"), [(RSA, "rsa-1"), (EC, "ec-1"), (ED, "ed-1")])
async def test_jwk_url_valid(pair: KeyPair, kid: str, jwks_server: tuple[JWKSApp, RunningServer]) -> None:
    app, running = jwks_server
    async with httpx.AsyncClient() as client:
        v = JWTVerifier(parse_jwt_secret({"jwk_url": f"{running.url}/jwks"}), http_client=client, clock=Clock())
        await v.start()
        try:
            result = await v.verify(mint(payload(), key=pair, alg=pair.alg, headers={"kid": kid}))
            assert result.claims.default_role == "user"
            # A kid naming another key's entry does not let this key through.
            wrong = "ec-1" if kid != "ec-1" else "rsa-1"
            await rejected(v, mint(payload(), key=pair, alg=pair.alg, headers={"kid": wrong}))
            # RS256 key, token claims RS512 with the same key: allowed, RSA JWK without alg.
            if pair is RSA:
                await v.verify(mint(payload(), key=RSA, alg="RS512", headers={"kid": kid}))
                await rejected(v, hs_sign({"alg": "HS256", "kid": kid}, payload(), RSA.public_pem.encode()))
        finally:
            await v.aclose()
    assert app.hits == 1


async def test_jwk_url_kid_injection_and_random_kids(jwks_server: tuple[JWKSApp, RunningServer]) -> None:
    app, running = jwks_server
    clock = Clock(1000.0)
    async with httpx.AsyncClient() as client:
        v = JWTVerifier(
            parse_jwt_secret({"jwk_url": f"{running.url}/jwks"}), http_client=client, clock=Clock(), jwks_clock=clock
        )
        await v.start()
        try:
            for kid in KID_INJECTIONS:
                token = mint(payload(), key=OTHER_RSA, alg="RS256", headers={"kid": kid})
                await rejected(v, token, "unknown key id")
            # Signatures do not matter: an unknown kid is refused before any key is tried.
            tokens = [forge({"alg": "RS256", "kid": f"random-{i}"}, payload(), b"x" * 256) for i in range(100)]
            # The work is counted (the JWKS fetches, below); the guard only turns a hang into an error.
            results = await asyncio.wait_for(asyncio.gather(*(v.verify(t) for t in tokens), return_exceptions=True), 30)
            assert all(isinstance(r, InvalidJWT) for r in results)
            clock.advance(31)  # past min_refresh_interval: at most one more fetch for the next burst
            results = await asyncio.wait_for(asyncio.gather(*(v.verify(t) for t in tokens), return_exceptions=True), 30)
            assert all(isinstance(r, InvalidJWT) for r in results)
        finally:
            await v.aclose()
    assert 1 <= app.hits <= 2


async def test_jwk_url_key_rotation(jwks_server: tuple[JWKSApp, RunningServer]) -> None:
    app, running = jwks_server
    clock = Clock(1000.0)
    new = rsa_pair()
    async with httpx.AsyncClient() as client:
        v = JWTVerifier(
            parse_jwt_secret({"jwk_url": f"{running.url}/jwks"}), http_client=client, clock=Clock(), jwks_clock=clock
        )
        await v.start()
        try:
            old_token = mint(payload(), key=RSA, alg="RS256", headers={"kid": "rsa-1"})
            await v.verify(old_token)
            app.serve_keys(new.jwk("rsa-2"))
            clock.advance(31)
            result = await v.verify(mint(payload(), key=new, alg="RS256", headers={"kid": "rsa-2"}))
            assert result.claims.default_role == "user"
            assert app.hits == 2
            # The old key is gone: its cached token is re-verified and now fails.
            await rejected(v, old_token)
        finally:
            await v.aclose()


async def test_jwk_url_idp_down_at_start(listener: tuple[str, list[bytes]]) -> None:
    url, hits = listener  # accepts and closes: not an HTTP server
    async with httpx.AsyncClient() as client:
        v = JWTVerifier(parse_jwt_secret({"jwk_url": f"{url}/jwks"}), http_client=client, clock=Clock())
        await v.start()  # logs a warning, does not raise
        try:
            token = mint(payload(), key=RSA, alg="RS256", headers={"kid": "rsa-1"})
            await rejected(v, token, "no JWKS keys available")
        finally:
            await v.aclose()
    assert len(hits) == 1


# --- several configs --------------------------------------------------------------------------


async def test_several_issuers() -> None:
    cfgs = parse_jwt_secret(
        [
            {"type": "HS256", "key": HS_KEY, "issuer": "hs-issuer"},
            {"type": "RS256", "key": RSA.public_pem, "issuer": "rs-issuer", "audience": "api"},
            {"type": "ES256", "key": EC.public_pem},
        ]
    )
    v = verifier(*cfgs)
    assert (await v.verify(mint(payload(iss="hs-issuer")))).config is cfgs[0]
    rs = await v.verify(mint(payload(iss="rs-issuer", aud="api"), key=RSA, alg="RS256"))
    assert rs.config is cfgs[1]
    assert (await v.verify(mint(payload(), key=EC, alg="ES256"))).config is cfgs[2]
    # The EC config has no issuer, so it accepts any iss (Hasura's rule).
    assert (await v.verify(mint(payload(iss="whoever"), key=EC, alg="ES256"))).config is cfgs[2]
    # Signed by the RS key but claiming the HS issuer: no config verifies it.
    await rejected(v, mint(payload(iss="hs-issuer"), key=RSA, alg="RS256"))
    # The RS key verified, so its verdict (the audience) is the one reported.
    await rejected(v, mint(payload(iss="rs-issuer", aud="web"), key=RSA, alg="RS256"), "JWTNotInAudience")
    # HS token without iss: only the issuer-less EC config is a candidate.
    await rejected(v, mint(payload()))


async def test_several_issuers_no_candidate() -> None:
    cfgs = parse_jwt_secret(
        [{"type": "HS256", "key": HS_KEY, "issuer": "a"}, {"type": "HS256", "key": HS_KEY + "x", "issuer": "b"}]
    )
    await rejected(verifier(*cfgs), mint(payload(iss="c")), "JWTNotInIssuer")
    await rejected(verifier(*cfgs), mint(payload()), "JWTNotInIssuer")


# --- cache ------------------------------------------------------------------------------------


async def test_cache_hit_returns_same_result_and_rechecks_exp(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    v = verifier(*configs(allowed_skew=10), clock=clock)
    token = mint(payload(exp=NOW + 60))
    first = await v.verify(token)

    calls = 0
    real_decode = jose_jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jose_jwt, "decode", counting_decode)
    assert await v.verify(token) is first
    clock.advance(69)  # exp + skew not reached yet
    assert await v.verify(token) is first
    assert calls == 0
    clock.advance(1)
    await rejected(v, token, "JWTExpired")
    assert v.cache_len == 0
    await rejected(v, token, "JWTExpired")  # re-verified from scratch, still expired
    assert calls == 1


async def test_failures_are_not_cached() -> None:
    clock = Clock()
    v = verifier(clock=clock)
    token = mint(payload(nbf=NOW + 30))
    await rejected(v, token, "JWTNotYetValid")
    assert v.cache_len == 0
    clock.advance(30)
    await v.verify(token)
    assert v.cache_len == 1


async def test_cache_is_bounded_lru() -> None:
    v = verifier(cache_size=3)
    tokens = [mint(payload(jti=str(i))) for i in range(5)]
    for token in tokens:
        await v.verify(token)
    assert v.cache_len == 3
    disabled = verifier(cache_size=0)
    await disabled.verify(tokens[0])
    assert disabled.cache_len == 0


def test_verifier_needs_configs() -> None:
    with pytest.raises(ValueError):
        JWTVerifier([])
    with pytest.raises(ValueError):
        JWTVerifier([JWTConfig()])
