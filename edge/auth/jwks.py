"""Verification keys: built from a static PEM/HMAC config or from a JWKS URL, with a cache.

Every key the edge verifies with is a :class:`VerificationKey`: a python-jose key object (the
cryptography backend) bound to exactly ONE JWS algorithm. The algorithm comes from the
configuration or from the JWK itself (``alg``, else ``kty`` + ``crv``), never from a token
header, so a token can only ever choose *which configured key* to try, never *how* to verify.

:class:`JWKSCache` fetches one fixed JWKS URL with an injected ``httpx.AsyncClient``:

* at :meth:`JWKSCache.start`, then in the background when the response's caching headers say so
  (``Cache-Control: s-maxage / max-age / no-cache / no-store / must-revalidate``, ``Expires``),
  bounded below by ``min_refresh_interval`` and above by ``poll_interval``;
* on demand for a token whose ``kid`` is unknown, at most once per ``min_refresh_interval``
  (and single-flight: concurrent callers share one fetch), so a flood of random ``kid`` values
  costs at most one or two fetches;
* a failed fetch (network error, non-200, non-JSON, no usable key) keeps the LAST GOOD key set.

A ``kid`` is only ever used as a dictionary key: never in a path, a query or a URL.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jose.backends.base import Key
from jose.backends.cryptography_backend import CryptographyECKey, CryptographyHMACKey, CryptographyRSAKey
from jose.exceptions import JWKError

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "MIN_RSA_BITS",
    "Ed25519Key",
    "JWKSCache",
    "VerificationKey",
    "key_from_jwk",
    "keys_from_jwks",
    "static_key",
]

logger = logging.getLogger(__name__)

RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
EC_ALGORITHMS = ("ES256", "ES384", "ES512")
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
#: Every algorithm a JWKS key may carry. Symmetric (``oct``) keys are never taken from a URL.
ASYMMETRIC_ALGORITHMS = (*RSA_ALGORITHMS, *EC_ALGORITHMS, "EdDSA")
#: RFC 7518 section 3.3: RSA keys of 2048 bits or larger MUST be used.
MIN_RSA_BITS = 2048
#: A JWKS document is a few KiB; anything this big is not one.
MAX_JWKS_BYTES = 1024 * 1024
#: Real IdPs publish a handful of keys; past this many the rest are ignored (bounded CPU per fetch).
MAX_JWKS_KEYS = 100

_EC_CURVES: Mapping[str, tuple[str, type[ec.EllipticCurve]]] = {
    "P-256": ("ES256", ec.SECP256R1),
    "P-384": ("ES384", ec.SECP384R1),
    "P-521": ("ES512", ec.SECP521R1),
}
_EC_ALG_CURVE = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class Ed25519Key(Key):  # type: ignore[misc]  # jose ships no type information
    """A verify-only python-jose key for ``EdDSA`` over Ed25519 (python-jose has none).

    Handing jose a ready ``Key`` object makes ``jws.verify`` call :meth:`verify` directly, after
    its own ``alg in algorithms`` check, so the algorithm pin works exactly as for RSA/EC keys.
    """

    def __init__(self, key: ed25519.Ed25519PublicKey, algorithm: str = "EdDSA") -> None:
        self.prepared_key = key
        self._algorithm = algorithm

    def verify(self, msg: bytes, sig: bytes) -> bool:
        try:
            self.prepared_key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True

    def sign(self, msg: bytes) -> bytes:
        raise JWKError("Ed25519Key is verify-only")

    def public_key(self) -> Ed25519Key:
        return self


@dataclass(frozen=True)
class VerificationKey:
    """One public (or HMAC) key pinned to one JWS algorithm.

    ``key`` is a python-jose ``Key`` object; it is kept out of ``repr`` so key material never
    lands in a log line or an error message.
    """

    alg: str
    key: Any = field(repr=False)
    kid: str | None = None


# --- static keys (HASURA_GRAPHQL_JWT_SECRET "type" + "key") ------------------------------------


def static_key(alg: str, material: str) -> VerificationKey:
    """Build the key for a ``type``/``key`` config. ``alg`` is a JWS name (``EdDSA``, not ``Ed25519``).

    HMAC keys are the raw UTF-8 secret; asymmetric keys are a PEM public key or an X.509
    certificate. Raises ``ValueError`` with a message that never contains the key.
    """
    if alg in HMAC_ALGORITHMS:
        try:
            return VerificationKey(alg, CryptographyHMACKey(material, alg))
        except JWKError:
            raise ValueError(f"the key for {alg} must be a shared secret, not a PEM or SSH key") from None
    public = _load_pem(material)
    _check_public_key(alg, public)
    return VerificationKey(alg, _wrap(alg, public))


def _load_pem(material: str) -> Any:
    data = material.encode("utf-8")
    try:
        if data.lstrip().startswith(b"-----BEGIN CERTIFICATE-----"):
            return x509.load_pem_x509_certificate(data).public_key()
        return load_pem_public_key(data)
    except (ValueError, TypeError):
        # The parser's own message may quote the input: keep it out.
        raise ValueError("the key is not a PEM public key or X.509 certificate") from None


def _check_public_key(alg: str, public: Any) -> None:
    if alg in RSA_ALGORITHMS:
        if not isinstance(public, rsa.RSAPublicKey):
            raise ValueError(f"{alg} needs an RSA public key")
        if public.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    elif alg in EC_ALGORITHMS:
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != _EC_ALG_CURVE[alg]:
            raise ValueError(f"{alg} needs an EC public key on curve {_EC_ALG_CURVE[alg]}")
    elif alg == "EdDSA":
        if not isinstance(public, ed25519.Ed25519PublicKey):
            raise ValueError("Ed25519 needs an Ed25519 public key")
    else:
        raise ValueError(f"unsupported algorithm {alg!r}")


def _wrap(alg: str, public: Any) -> Any:
    """The python-jose (cryptography backend) key object for an already-checked public key."""
    if alg in RSA_ALGORITHMS:
        return CryptographyRSAKey(public, alg)
    if alg in EC_ALGORITHMS:
        return CryptographyECKey(public, alg)
    return Ed25519Key(public, alg)


# --- JWKs --------------------------------------------------------------------------------------


def key_from_jwk(jwk: Any) -> list[VerificationKey]:
    """The verification keys for one JWK (RFC 7517), or ``[]`` when it is unusable.

    Only signature keys (``use`` absent or ``"sig"``, ``key_ops`` absent or containing
    ``"verify"``) of kty RSA / EC / OKP-Ed25519 are kept. Without an ``alg``, the algorithm
    follows from the key: EC from ``crv``, Ed25519 is ``EdDSA``, and an RSA key yields one
    entry per RS256/384/512 (same key family, so no cross-family confusion is possible).
    Private members (``d`` ...) are ignored: only the public part is ever built.
    """
    if not isinstance(jwk, Mapping):
        return []
    kid = jwk.get("kid")
    alg = jwk.get("alg")
    if (kid is not None and not isinstance(kid, str)) or (alg is not None and not isinstance(alg, str)):
        return []
    if jwk.get("use", "sig") != "sig":
        return []
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return []
    try:
        pairs = _jwk_public_key(jwk, alg)
    except (ValueError, TypeError, KeyError, OverflowError, binascii.Error):
        return []
    return [VerificationKey(a, _wrap(a, public), kid) for a, public in pairs]


def _jwk_public_key(jwk: Mapping[str, Any], alg: str | None) -> list[tuple[str, Any]]:
    kty = jwk.get("kty")
    if kty == "RSA":
        if alg is not None and alg not in RSA_ALGORITHMS:
            return []
        public: Any = rsa.RSAPublicNumbers(_b64_int(jwk["e"]), _b64_int(jwk["n"])).public_key()
        if public.key_size < MIN_RSA_BITS:
            return []
        return [(a, public) for a in ((alg,) if alg else RSA_ALGORITHMS)]
    if kty == "EC":
        crv = jwk.get("crv")
        if not isinstance(crv, str) or crv not in _EC_CURVES:
            return []
        curve_alg, curve = _EC_CURVES[crv]
        if alg is not None and alg != curve_alg:
            return []
        # public_key() checks that the point is on the curve (invalid-curve attacks).
        public = ec.EllipticCurvePublicNumbers(_b64_int(jwk["x"]), _b64_int(jwk["y"]), curve()).public_key()
        return [(curve_alg, public)]
    if kty == "OKP":
        if jwk.get("crv") != "Ed25519" or alg not in (None, "EdDSA"):
            return []
        return [("EdDSA", ed25519.Ed25519PublicKey.from_public_bytes(_b64_bytes(jwk["x"])))]
    return []


def _b64_bytes(value: Any) -> bytes:
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        raise ValueError("not base64url")
    value = value.rstrip("=")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _b64_int(value: Any) -> int:
    return int.from_bytes(_b64_bytes(value), "big")


def keys_from_jwks(document: Any) -> dict[str | None, list[VerificationKey]]:
    """Index a JWKS document by ``kid`` (``None`` for keys without one); unusable keys are skipped.

    Raises ``ValueError`` when the document is not ``{"keys": [...]}``.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS document must be an object with a "keys" list')
    index: dict[str | None, list[VerificationKey]] = {}
    for jwk in document["keys"][:MAX_JWKS_KEYS]:
        for key in key_from_jwk(jwk):
            index.setdefault(key.kid, []).append(key)
    return index


# --- caching headers ---------------------------------------------------------------------------


def _cache_ttl(headers: httpx.Headers, now_wall: float) -> float | None:
    """Seconds the response may be used for, from its caching headers; ``None`` when they say nothing.

    ``s-maxage`` wins over ``max-age`` (the edge is a shared cache for its clients);
    ``no-cache`` / ``no-store`` mean "revalidate every time" (0). ``must-revalidate`` only forbids
    serving *stale* keys, which the edge never does, so alone it also means 0 but it does not
    override an explicit max-age. ``Expires`` is measured against the response's ``Date``
    header when present (both from the IdP's clock), else against the local wall clock.
    """
    directives: dict[str, str | None] = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.lower()] = value.strip().strip('"') or None
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    for name in ("s-maxage", "max-age"):
        raw = directives.get(name)
        if raw is not None and raw.isdigit():
            return float(raw)
    if "must-revalidate" in directives:
        return 0.0
    expires = _http_date(_first(headers, "expires"))
    if expires is not None:
        date = _http_date(_first(headers, "date"))
        return max(0.0, expires - (date if date is not None else now_wall))
    return None


def _first(headers: httpx.Headers, name: str) -> str | None:
    # HTTP dates contain a comma, so a repeated header cannot be read through headers.get().
    values = headers.get_list(name)
    return values[0] if values else None


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (ValueError, TypeError, IndexError, OverflowError):
        return None  # RFC 9111: an invalid Expires means "already expired"; we fall back to default


# --- the cache ---------------------------------------------------------------------------------


class JWKSCache:
    """The key set behind one ``jwk_url``, kept fresh in the background.

    Start-up choice: unlike Hasura (where a failed first fetch is fatal), :meth:`start` never
    raises. A failed fetch is logged as a warning and retried in the background every
    ``min_refresh_interval`` seconds; until a fetch succeeds, every token for this URL fails
    with ``invalid-jwt``. An IdP outage at deploy time therefore degrades to 401s for JWKS
    tokens instead of keeping the whole edge down (admin-secret and other issuers keep working).

    Parameters: ``min_refresh_interval`` is the shortest time between two fetches of any kind
    triggered by unknown kids, and the lower bound of a cache lifetime; ``poll_interval`` is the
    upper bound of a cache lifetime (a long ``max-age`` still gets a rotated or revoked key
    noticed within it); ``default_ttl`` applies when the response has no caching headers.
    ``clock`` is monotonic seconds (injectable for tests); all scheduling uses it. The
    ``Expires`` header alone needs a wall clock, see :func:`_cache_ttl`.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_interval: float = 30.0,
        poll_interval: float = 300.0,
        default_ttl: float = 300.0,
        request_timeout: float | None = None,
    ) -> None:
        self.url = url
        self._client = client
        self._clock = clock
        self._min_refresh_interval = min_refresh_interval
        self._poll_interval = max(poll_interval, min_refresh_interval)
        self._default_ttl = default_ttl
        # None: the injected client's own timeout applies.
        self._request_options: dict[str, Any] = {} if request_timeout is None else {"timeout": request_timeout}
        self._keys: dict[str | None, list[VerificationKey]] = {}
        self._fingerprint: str | None = None
        self._lock = asyncio.Lock()
        self._last_attempt: float | None = None
        self._next_refresh_at: float = 0.0
        self._task: asyncio.Task[None] | None = None
        #: Bumped whenever a fetch brings a different key set, so callers can tell it changed.
        self.generation = 0
        #: Number of HTTP fetches attempted (observability, tests).
        self.fetch_count = 0

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    @property
    def next_refresh_at(self) -> float:
        """When (on ``clock``) the next scheduled refresh is due."""
        return self._next_refresh_at

    async def start(self) -> None:
        """Fetch once (a failure is logged, not raised) and start the background refresher."""
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"jwks-refresh {self.url}")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def keys_for(self, kid: str | None) -> list[VerificationKey]:
        """Candidate keys for a token's ``kid``: that kid's keys plus kid-less keys; all keys if no kid.

        ``kid`` is only a dictionary key here.
        """
        if kid is None:
            return [key for keys in self._keys.values() for key in keys]
        return [*self._keys.get(kid, ()), *self._keys.get(None, ())]

    def knows(self, kid: str | None) -> bool:
        return bool(self.keys_for(kid))

    async def refresh_for_unknown_kid(self, kid: str | None) -> bool:
        """Refetch because a token named a key we lack; rate-limited to once per ``min_refresh_interval``.

        Returns whether ``kid`` is known afterwards. Any fetch (scheduled or not) within the
        interval counts, so a burst of random kids right after a refresh costs nothing.
        """
        if self.knows(kid):
            return True
        async with self._lock:
            # Another caller may have fetched while we waited for the lock.
            if self.knows(kid) or not self._may_fetch():
                return self.knows(kid)
            await self._fetch()
        return self.knows(kid)

    async def refresh(self) -> bool:
        """Fetch now (single-flight, not rate-limited). Returns whether the fetch succeeded."""
        async with self._lock:
            return await self._fetch()

    async def refresh_if_due(self) -> bool:
        """Fetch if the schedule says so; returns whether a fetch happened and succeeded."""
        if self._clock() < self._next_refresh_at:
            return False
        async with self._lock:
            if self._clock() < self._next_refresh_at:
                return False
            return await self._fetch()

    def _may_fetch(self) -> bool:
        return self._last_attempt is None or self._clock() - self._last_attempt >= self._min_refresh_interval

    async def _run(self) -> None:
        while True:
            delay = min(max(self._next_refresh_at - self._clock(), 1.0), self._poll_interval)
            await asyncio.sleep(delay)
            try:
                await self.refresh_if_due()
            except Exception:  # the loop must survive anything; _fetch already logs failures
                logger.exception("JWKS background refresh crashed")

    async def _fetch(self) -> bool:
        """One fetch, under ``_lock``. Replaces the key set only with a usable one."""
        self._last_attempt = self._clock()
        self.fetch_count += 1
        try:
            keys, fingerprint, ttl = await self._download()
        except Exception as exc:  # any failure keeps the last good keys; retry soon
            logger.warning(
                "JWKS fetch from %s failed, keeping %d known key id(s): %s",
                _safe_url(self.url),
                len(self._keys),
                _describe(exc),
            )
            self._next_refresh_at = self._clock() + self._min_refresh_interval
            return False
        if fingerprint != self._fingerprint:
            self._keys, self._fingerprint = keys, fingerprint
            self.generation += 1
        ttl = self._default_ttl if ttl is None else ttl
        self._next_refresh_at = self._clock() + min(max(ttl, self._min_refresh_interval), self._poll_interval)
        return True

    async def _download(self) -> tuple[dict[str | None, list[VerificationKey]], str, float | None]:
        # follow_redirects=False: the URL is fixed by configuration and must stay that way (SSRF).
        async with self._client.stream(
            "GET",
            self.url,
            follow_redirects=False,
            headers={"accept": "application/json"},
            **self._request_options,
        ) as response:
            if response.status_code != 200:
                raise _FetchError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise _FetchError("document too large")
        try:
            document = json.loads(bytes(body))
        except (ValueError, RecursionError):
            raise _FetchError("not JSON") from None
        try:
            keys = keys_from_jwks(document)
        except ValueError as exc:
            raise _FetchError(str(exc)) from None
        if not keys:
            raise _FetchError("no usable signature key")
        fingerprint = json.dumps(document["keys"], sort_keys=True, separators=(",", ":"))
        return keys, fingerprint, _cache_ttl(response.headers, time.time())


class _FetchError(Exception):
    pass


def _safe_url(url: str) -> str:
    """The URL without userinfo or query, for logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _FetchError):
        return str(exc)
    return type(exc).__name__
