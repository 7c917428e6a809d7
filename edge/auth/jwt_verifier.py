"""JWT verification: a token string in, a :class:`VerifiedToken` or an ``invalid-jwt`` error out.

Order of checks for one token (each failure is an :class:`~edge.errors.AuthenticationError`):

1. size (> 16 KiB is refused before any parsing) and compact-JWS shape (three base64url parts,
   non-empty signature), then the verified-token cache;
2. candidate configs by the token's *unverified* ``iss``: configs with that issuer first, then
   configs without an issuer;
3. per config: ``crit`` refused, header ``alg`` must be one the config pins, keys chosen by
   ``kid`` (a dict lookup; JWKS only; an unknown kid triggers one rate-limited refetch);
   ``jwk``/``jku``/``x5u``/``x5c`` headers are never read, so they cause no fetch and no trust;
4. signature, by python-jose (cryptography backend) with ``algorithms=[that key's alg]``;
5. registered claims with ``clock()`` and ``allowed_skew``: ``exp`` REQUIRED, ``nbf``, ``iat``
   not in the future, ``iss`` and ``aud`` when configured;
6. Hasura claims (:func:`~edge.auth.claims.extract_hasura_claims`).

Deliberate differences from Hasura: a token WITHOUT ``iss`` is rejected when the config has an
``issuer`` (Hasura lets it through); a token without ``exp`` is rejected; an ``iat`` in the
future beyond the skew is rejected; a JWKS fetch failure at start-up is not fatal (see
:class:`~edge.auth.jwks.JWKSCache`).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import httpx
from jose import jwt as jose_jwt
from jose.exceptions import JOSEError

from edge.auth.claims import HasuraClaims, extract_hasura_claims
from edge.auth.jwks import JWKSCache, VerificationKey, static_key
from edge.auth.jwt_config import JWT_TYPES, JWTConfig
from edge.errors import AuthenticationError, InvalidJWT

__all__ = ["MAX_TOKEN_LENGTH", "JWTVerifier", "VerifiedToken"]

#: Tokens longer than this are refused before any decoding (16 KiB).
MAX_TOKEN_LENGTH: Final = 16 * 1024
#: The verified-token cache also stops growing past this many token characters in total.
MAX_CACHE_CHARS: Final = 32 * 1024 * 1024
_PREFIX: Final = "Could not verify JWT"
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Signature only: every registered claim is checked below with the injected clock, because
# jose's checks read the wall clock, truncate to whole seconds, accept numeric strings, take a
# single audience, and reject any `aud` when no audience is configured.
_JOSE_OPTIONS: Final = {
    "verify_signature": True,
    **{f"verify_{claim}": False for claim in ("aud", "iat", "exp", "nbf", "iss", "sub", "jti", "at_hash")},
}


@dataclass(frozen=True)
class VerifiedToken:
    """A token that passed every check. ``expires_at`` is its ``exp`` (epoch seconds)."""

    claims: HasuraClaims
    expires_at: float
    issuer: str | None
    config: JWTConfig


@dataclass(frozen=True)
class _CacheEntry:
    token: VerifiedToken
    jwks: JWKSCache | None
    generation: int


class _Rejected(Exception):
    """One config's verdict; ``signed`` tells whether the signature had already been verified."""

    def __init__(self, error: AuthenticationError, *, signed: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.signed = signed


def _invalid(reason: str) -> InvalidJWT:
    return InvalidJWT(f"{_PREFIX}: {reason}")


@contextlib.contextmanager
def _jose_errors(reason: str) -> Iterator[None]:
    """THE place where python-jose's exceptions become edge errors.

    jose raises ``JWTError``/``JWSError``/``JWTClaimsError``/``ExpiredSignatureError`` (all
    ``JOSEError``), but also lets ``ValueError``/``TypeError``/``RecursionError`` escape from
    its JSON and base64 handling. None of them may become a 500, and none of their messages
    may reach the client (they can quote token parts), so each call site names its ``reason``.
    """
    try:
        yield
    except (JOSEError, ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError):
        raise _invalid(reason) from None


class JWTVerifier:
    """Verifies tokens against one or more :class:`JWTConfig`, with a bounded LRU of verified tokens.

    The cache maps a token string to its :class:`VerifiedToken`, so a repeated token costs a
    dict lookup plus an ``exp`` re-check against ``clock()``; a JWKS key-set change
    invalidates entries verified with that JWKS. Failures are never cached.

    Deliberately stricter than Hasura: ``exp`` is required, a future ``iat`` is refused, and a
    token without ``iss`` is refused by a config that has an ``issuer`` (Hasura accepts it).
    """

    def __init__(
        self,
        configs: Sequence[JWTConfig],
        *,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
        jwks_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` is wall time for ``exp``/``nbf``/``iat``; ``jwks_clock`` (monotonic) schedules JWKS refreshes.

        Without ``http_client``, a client is created (and closed by :meth:`aclose`) only if some
        config has a ``jwk_url``. Raises ``ValueError`` for an unusable config.
        """
        if not configs:
            raise ValueError("JWTVerifier needs at least one JWTConfig")
        self._configs = tuple(configs)
        self._clock = clock
        self._cache_size = cache_size
        self._cache: OrderedDict[str, _CacheEntry] = OrderedDict()
        self._cache_chars = 0
        self._static: dict[int, VerificationKey] = {}
        self._jwks: dict[int, JWKSCache] = {}
        self._owned_client: httpx.AsyncClient | None = None
        by_url: dict[str, JWKSCache] = {}
        for index, config in enumerate(self._configs):
            if config.key is not None and config.type is not None:
                self._static[index] = static_key(JWT_TYPES[config.type], config.key)
            elif config.jwk_url is not None:
                if config.jwk_url not in by_url:
                    if http_client is None:
                        http_client = self._owned_client = httpx.AsyncClient()
                    by_url[config.jwk_url] = JWKSCache(config.jwk_url, client=http_client, clock=jwks_clock)
                self._jwks[index] = by_url[config.jwk_url]
            else:
                raise ValueError("each JWTConfig needs type+key or jwk_url")
        self._caches = tuple(by_url.values())

    @property
    def jwks_fetches(self) -> int:
        """JWKS documents fetched so far, over every ``jwk_url`` (for metrics)."""
        return sum(cache.fetch_count for cache in self._caches)

    async def start(self) -> None:
        """Fetch every JWKS once and start their background refreshers (never raises on IdP errors)."""
        for cache in self._caches:
            await cache.start()

    async def aclose(self) -> None:
        for cache in self._caches:
            await cache.aclose()
        if self._owned_client is not None:
            await self._owned_client.aclose()

    def cached(self, token: str) -> VerifiedToken | None:
        """``token`` as verified earlier, with ``exp`` checked again now; None when it must be verified.

        Raises :class:`~edge.errors.InvalidJWT` when the remembered token has expired since. A token
        verified against a JWKS that has changed since is forgotten (None): ``verify`` checks it again.
        """
        entry = self._cache.get(token)
        if entry is None:
            return None
        if entry.jwks is not None and entry.jwks.generation != entry.generation:
            self._evict(token)  # the JWKS changed since: verify again against the new key set
            return None
        try:
            self._check_exp(entry.token.expires_at, entry.token.config, self._clock())
        except InvalidJWT:
            self._evict(token)
            raise
        self._cache.move_to_end(token)
        return entry.token

    async def verify(self, token: str) -> VerifiedToken:
        """Verify ``token`` (the bare compact JWS, without ``Bearer``); see the module docstring.

        Raises :class:`~edge.errors.InvalidJWT`, :class:`~edge.errors.InvalidJWTClaims` or
        :class:`~edge.errors.MissingRoleClaims`. Messages never contain the token or a key.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid("token too large")
        verified = self.cached(token)
        if verified is not None:
            return verified
        if not _COMPACT_JWS.fullmatch(token):
            raise _invalid("JWSError CompactDecodeError")
        with _jose_errors("JWSError CompactDecodeError"):
            header = jose_jwt.get_unverified_header(token)
            unverified = jose_jwt.get_unverified_claims(token) if len(self._configs) > 1 else {}
        first: _Rejected | None = None
        for index in self._candidates(unverified.get("iss")):
            try:
                verified, jwks, generation = await self._verify_with(index, token, header)
            except _Rejected as rejected:
                # Prefer the verdict of a config whose key actually signed the token.
                if first is None or (rejected.signed and not first.signed):
                    first = rejected
                continue
            self._remember(token, _CacheEntry(verified, jwks, generation))
            return verified
        if first is None:
            raise _invalid("JWTNotInIssuer")
        raise first.error

    # --- one config --------------------------------------------------------------------------

    def _candidates(self, issuer: Any) -> list[int]:
        if len(self._configs) == 1:
            return [0]  # the issuer check runs after the signature, like every claim check
        matching = [i for i, c in enumerate(self._configs) if c.issuer is not None and c.issuer == issuer]
        open_ = [i for i, c in enumerate(self._configs) if c.issuer is None]
        return matching + open_

    async def _verify_with(
        self, index: int, token: str, header: Mapping[str, Any]
    ) -> tuple[VerifiedToken, JWKSCache | None, int]:
        config = self._configs[index]
        keys, jwks = await self._keys(index, header)
        generation = jwks.generation if jwks is not None else 0
        try:
            with _jose_errors("JWSError JWSInvalidSignature"):
                # Every key here carries the same alg (the header's, already checked against the
                # config), and jose re-checks header alg in [that alg] before any key is used.
                payload = jose_jwt.decode(
                    token, [key.key for key in keys], algorithms=[keys[0].alg], options=_JOSE_OPTIONS
                )
        except InvalidJWT as error:
            raise _Rejected(error, signed=False) from None
        try:
            expires_at = self._check_registered(payload, config, self._clock())
            claims = extract_hasura_claims(payload, config)
        except AuthenticationError as error:
            raise _Rejected(error, signed=True) from None
        issuer = payload.get("iss")
        verified = VerifiedToken(claims, expires_at, issuer if isinstance(issuer, str) else None, config)
        return verified, jwks, generation

    async def _keys(self, index: int, header: Mapping[str, Any]) -> tuple[list[VerificationKey], JWKSCache | None]:
        """The keys to try, all pinned to the header's ``alg``; a non-empty list or ``_Rejected``."""

        def reject(reason: str) -> NoReturn:
            raise _Rejected(_invalid(reason), signed=False)

        if "crit" in header:
            reject("JWSError unsupported critical header")  # RFC 7515 4.1.11: we understand no extension
        alg = header.get("alg")
        config = self._configs[index]
        # Exact, case-sensitive membership in the configured list: "none", "None", "HS256"
        # against an RS key, ... all stop here, before any key is touched.
        if not isinstance(alg, str) or alg not in config.algorithms():
            reject("JWSError JWSInvalidAlgorithm")
        if index in self._static:
            return [self._static[index]], None
        jwks = self._jwks[index]
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            reject("unknown key id")
        candidates = jwks.keys_for(kid)
        if not candidates:
            await jwks.refresh_for_unknown_kid(kid)
            candidates = jwks.keys_for(kid)
        if not candidates:
            reject("unknown key id" if jwks.has_keys else "no JWKS keys available")
        keys = [key for key in candidates if key.alg == alg]
        if not keys:
            reject("JWSError JWSInvalidAlgorithm")
        return keys, jwks

    def _check_registered(self, payload: Mapping[str, Any], config: JWTConfig, now: float) -> float:
        """exp (required), nbf, iat, iss, aud, all with ``allowed_skew``. Returns ``exp``."""
        skew = config.allowed_skew
        if "exp" not in payload:
            raise _invalid("JWTClaimsError missing exp claim")
        exp = _numeric_date(payload["exp"], "exp")
        self._check_exp(exp, config, now)
        if "nbf" in payload and now + skew < _numeric_date(payload["nbf"], "nbf"):
            raise _invalid("JWTNotYetValid")
        if "iat" in payload and _numeric_date(payload["iat"], "iat") > now + skew:
            raise _invalid("JWTIssuedAtFuture")
        if config.issuer is not None and payload.get("iss") != config.issuer:
            raise _invalid("JWTNotInIssuer")
        if config.audience is not None:
            aud = payload.get("aud")
            audiences = [aud] if isinstance(aud, str) else aud
            if not isinstance(audiences, list) or not any(
                isinstance(a, str) and a in config.audience for a in audiences
            ):
                raise _invalid("JWTNotInAudience")
        return exp

    @staticmethod
    def _check_exp(exp: float, config: JWTConfig, now: float) -> None:
        # RFC 7519 4.1.4: not accepted "on or after" exp (plus the configured leeway).
        if now >= exp + config.allowed_skew:
            raise _invalid("JWTExpired")

    # --- cache -------------------------------------------------------------------------------

    def _remember(self, token: str, entry: _CacheEntry) -> None:
        if self._cache_size <= 0:
            return
        if token in self._cache:
            self._evict(token)
        self._cache[token] = entry
        self._cache_chars += len(token)
        while len(self._cache) > self._cache_size or self._cache_chars > MAX_CACHE_CHARS:
            oldest, _ = self._cache.popitem(last=False)
            self._cache_chars -= len(oldest)

    def _evict(self, token: str) -> None:
        if self._cache.pop(token, None) is not None:
            self._cache_chars -= len(token)

    @property
    def cache_len(self) -> int:
        return len(self._cache)


def _numeric_date(value: Any, name: str) -> float:
    """A NumericDate: a finite JSON number (booleans, strings, NaN and Infinity are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"JWTClaimsError invalid {name} claim")
    try:
        number = float(value)
    except OverflowError:
        raise _invalid(f"JWTClaimsError invalid {name} claim") from None
    if not math.isfinite(number):
        raise _invalid(f"JWTClaimsError invalid {name} claim")
    return number
