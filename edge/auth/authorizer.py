"""The auth webhook (an API gateway's "custom / Lambda authorizer") with Hasura's contract.

One fixed URL, from configuration only, decides who a request runs as (Hasura's
``HASURA_GRAPHQL_AUTH_HOOK``: ``userInfoFromAuthHook`` in server/src-lib/Hasura/Server/Auth/WebHook.hs):

* ``GET``: the client's headers are forwarded as request headers;
  ``POST``: ``{"headers": {...}, "request": <GraphQL request or batch>}`` is sent as JSON
  (``request`` is left out when ``send_request_body`` is false or there is no request).
* Forwarded headers are the client's, minus Hasura's ignore list (``Content-Length``,
  ``Content-MD5``, ``User-Agent``, ``Host``, ``Origin``, ``Referer``, ``Accept``,
  ``Accept-Encoding``, ``Accept-Language``, ``Accept-Datetime``, ``Cache-Control``,
  ``Connection``, ``DNT``, ``Content-Type``), minus the hop-by-hop headers of RFC 9110
  section 7.6.1 (they describe the client's connection, not the hook's), and minus every
  ``x-hasura-*`` header and ``x-api-key``: the edge never forwards identity claims the client
  made about itself, so the hook decides from real credentials (``Authorization``, cookies...).
* ``200`` with a JSON object: its ``x-hasura-*`` keys (any case, lower-cased here) are the
  session variables; ``x-hasura-role`` is required; every value must be a string. The
  ``Cache-Control`` (``max-age`` / ``s-maxage``, ``no-cache`` / ``no-store``) and ``Expires``
  keys of the BODY give the decision's expiry (``AuthorizerDecision.expires_at``, wall clock,
  for closing WebSockets) and bound its cache lifetime. Other keys are ignored. The session is
  built by :func:`edge.pipeline.authenticate.session_from_claims`, which drops the names the
  edge controls at Hasura (role, admin secret, backend-only flag) and refuses values that
  cannot travel as a header.
* ``401``: :class:`AuthorizerDenied` (401 ``authorizer-denied``).
* Anything else (another status, a redirect, non-JSON, a missing role, a non-string value, a
  body over 64 KiB, a timeout, a connection error): :class:`AuthorizerUnavailable`
  (503 ``authorizer-unavailable``). Its message names no URL, header or token; a warning is
  logged with the reason class only.

Caching, per credential. The key is the SHA-256 of the sorted forwarded header list (name and
value), so every forwarded header varies it (``Authorization``, ``Cookie``, ``X-Forwarded-For``,
any custom header), except the per-request correlation headers ``x-request-id``,
``traceparent`` and ``tracestate``, which are still forwarded but would otherwise make every
request a miss. The request body never varies the key: the hook decides identity, not
per-operation authorization; a hook that decides per operation needs ``cache_ttl=0``.

* An allow is kept ``min(cache_ttl, the body's max-age or Expires)``; ``no-cache`` /
  ``no-store`` or an unparsable ``Expires`` in the body mean "do not cache".
* A denial is kept ``min(cache_ttl, DENIAL_TTL)`` (10 s): long enough to absorb a client
  retrying a bad token in a loop, short enough that a credential the hook starts accepting
  (a session that was just created) works again quickly.
* Errors are never cached. Concurrent requests with the same key share one hook call
  (single flight), and so share its result, error included.
* ``cache_ttl=0`` disables both: every request calls the hook with its own body.
* The cache is an LRU bounded by ``max_entries``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
import orjson

from edge.errors import AuthenticationError, EdgeError, ServiceUnavailable
from edge.session import Session, session_from_claims

__all__ = [
    "DENIAL_TTL",
    "HASURA_IGNORED_HEADERS",
    "MAX_RESPONSE_BYTES",
    "Authorizer",
    "AuthorizerDecision",
    "AuthorizerDenied",
    "AuthorizerUnavailable",
    "forwarded_headers",
]

logger = logging.getLogger(__name__)

#: Hasura's ``commonClientHeadersIgnored``: never forwarded to the hook.
HASURA_IGNORED_HEADERS = frozenset(
    {
        b"content-length",
        b"content-md5",
        b"user-agent",
        b"host",
        b"origin",
        b"referer",
        b"accept",
        b"accept-encoding",
        b"accept-language",
        b"accept-datetime",
        b"cache-control",
        b"connection",
        b"dnt",
        b"content-type",
    }
)
# RFC 9110 section 7.6.1: these describe the client's hop; forwarding ``Transfer-Encoding`` on a
# body-less GET would even make the hook wait for chunks that never come.
_HOP_BY_HOP = frozenset(
    {b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"expect"}
    | {b"proxy-authorization", b"proxy-authenticate"}
)
_CLIENT_CLAIMS = frozenset({b"x-api-key"})
_CLIENT_CLAIM_PREFIX = b"x-hasura-"
# Forwarded, but unique per request: keying on them would turn every request into a miss.
_UNKEYED = frozenset({b"x-request-id", b"traceparent", b"tracestate"})

#: A session-variable object is a few hundred bytes; anything this big is not one.
MAX_RESPONSE_BYTES = 64 * 1024
#: Upper bound, in seconds, of how long a 401 from the hook is remembered.
DENIAL_TTL = 10.0
_USER_AGENT = b"hasura-edge-authorizer"
_INVALID = "Invalid response from authorization hook"
_DIGITS = re.compile(r"[0-9]{1,15}")  # str.isdigit() also accepts "²", which int() refuses


class AuthorizerDenied(AuthenticationError):
    """The auth webhook answered 401 (or did so recently for the same credentials)."""

    code = "authorizer-denied"
    default_message = "Authentication hook unauthorized this request"
    # Hasura's webhook mode answers a hook's 401 with ``access-denied`` and this message
    # (server/src-lib/Hasura/Server/Auth/WebHook.hs).
    hasura_code: str | None = "access-denied"


class AuthorizerUnavailable(ServiceUnavailable):
    """The auth webhook failed: no answer in time, unreachable, or an answer outside its contract."""

    code = "authorizer-unavailable"
    default_message = "The authorization hook is unavailable"


@dataclass(frozen=True, slots=True)
class AuthorizerDecision:
    """Who the request runs as, and until when (wall-clock epoch seconds, ``None``: no expiry).

    ``expires_at`` comes from the ``Cache-Control`` max-age or ``Expires`` keys of the hook's
    body; it matters for long-lived connections (a WebSocket is closed at that time).
    """

    session: Session
    expires_at: float | None = None


class _Denied:
    """A 401 from the hook, as a value (each waiter raises its own exception)."""


@dataclass(frozen=True, slots=True)
class _Failed:
    """A failure as a value: ``reason`` is logged, ``message`` is shown to the client."""

    reason: str
    message: str


_Outcome = AuthorizerDecision | _Denied | _Failed
_DENIED: Final = _Denied()


class _HookError(Exception):
    def __init__(self, reason: str, message: str = _INVALID, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


def forwarded_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The client headers the hook sees, names lower-cased, order and repeats kept.

    >>> forwarded_headers([(b"Authorization", b"Bearer t"), (b"Host", b"x"), (b"X-Hasura-Role", b"admin")])
    [(b'authorization', b'Bearer t')]
    """
    kept: list[tuple[bytes, bytes]] = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if (
            name in HASURA_IGNORED_HEADERS
            or name in _HOP_BY_HOP
            or name in _CLIENT_CLAIMS
            or name.startswith(_CLIENT_CLAIM_PREFIX)
        ):
            continue
        kept.append((name, value))
    return kept


def _cache_key(forwarded: Sequence[tuple[bytes, bytes]]) -> bytes:
    digest = hashlib.sha256()
    for name, value in sorted(pair for pair in forwarded if pair[0] not in _UNKEYED):
        # Length-prefixed, so no choice of bytes can make two different lists collide.
        digest.update(b"%d:%s%d:%s" % (len(name), name, len(value), value))
    return digest.digest()


def _header_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _headers_object(forwarded: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """The POST body's ``headers``: a repeated header is joined (RFC 9110 section 5.3; cookies with ``; ``)."""
    joined: dict[str, str] = {}
    for raw_name, raw_value in forwarded:
        name, value = raw_name.decode("latin-1"), _header_text(raw_value)
        if name in joined:
            joined[name] += ("; " if name == "cookie" else ", ") + value
        else:
            joined[name] = value
    return joined


def _parse_decision(body: bytes, wall_now: float) -> tuple[AuthorizerDecision, float | None]:
    """The decision in a 200 body, and how long it may be cached (``None``: the hook set no limit)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _HookError("not_json") from None
    if not isinstance(document, dict):
        raise _HookError("not_an_object")
    fields: dict[str, str] = {}
    for key, value in document.items():
        if not isinstance(value, str):
            raise _HookError("non_string_value")
        name = key.lower()
        if fields.get(name, value) != value:
            raise _HookError("conflicting_keys")
        fields[name] = value
    role = fields.get("x-hasura-role")
    if role is None:
        raise _HookError("missing_role", f"{_INVALID}: x-hasura-role not found in session variables")
    variables = {name: value for name, value in fields.items() if name.startswith("x-hasura-")}
    try:
        session = session_from_claims(role, variables)
    except EdgeError:
        raise _HookError("invalid_session_variable") from None
    expires_at, ttl = _lifetime(fields.get("cache-control"), fields.get("expires"), wall_now)
    return AuthorizerDecision(session=session, expires_at=expires_at), ttl


def _lifetime(cache_control: str | None, expires: str | None, wall_now: float) -> tuple[float | None, float | None]:
    """``(expires_at, cache ttl)`` from the body's keys; ``Cache-Control`` wins over ``Expires`` (as in Hasura)."""
    if cache_control is not None:
        directives: dict[str, str] = {}
        for part in cache_control.split(","):
            name, _, value = part.strip().partition("=")
            directives[name.strip().lower()] = value.strip().strip('"')
        max_age = next(
            (int(directives[n]) for n in ("s-maxage", "max-age") if _DIGITS.fullmatch(directives.get(n, ""))),
            None,
        )
        no_cache = "no-cache" in directives or "no-store" in directives
        if max_age is None and not no_cache:
            # Hasura refuses a Cache-Control it cannot read a max-age from.
            raise _HookError("invalid_cache_control")
        expires_at = None if max_age is None else wall_now + max_age
        return expires_at, 0.0 if no_cache else float(max_age or 0)
    if expires is not None:
        try:
            moment = email.utils.parsedate_to_datetime(expires)
        except (ValueError, TypeError, IndexError, OverflowError):
            # Hasura ignores an unreadable Expires; RFC 9111 reads it as "already stale": do both.
            return None, 0.0
        if moment.tzinfo is None:
            return None, 0.0
        expires_at = moment.timestamp()
        return expires_at, max(0.0, expires_at - wall_now)
    return None, None


class Authorizer:
    """Authorizes requests against one auth webhook URL, with a per-credential decision cache.

    ``client`` is shared and owned by the caller; redirects are never followed whatever its
    settings. ``timeout`` bounds a whole hook call (connect, send, wait, read). Use one instance
    per event loop. In GET mode, keep credentials out of the URL: httpx turns URL userinfo into
    an ``Authorization`` header, which would replace the client's. ``request`` must be JSON as
    decoded by orjson (it is re-encoded with orjson for POST).

    >>> authorizer = Authorizer("https://auth.internal/hook", client=client, mode="POST")
    >>> decision = await authorizer.authorize(scope["headers"], graphql_request)
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        mode: Literal["GET", "POST"] = "GET",
        send_request_body: bool = True,
        cache_ttl: float = 300.0,
        timeout: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the auth webhook URL must be an absolute http(s) URL")
        if mode not in ("GET", "POST"):
            raise ValueError("the auth webhook mode must be GET or POST")
        if not (math.isfinite(cache_ttl) and cache_ttl >= 0):
            raise ValueError("cache_ttl must be a finite number of seconds >= 0")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError("timeout must be a finite number of seconds > 0")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._url = url
        self._client = client
        self.mode = mode
        self.send_request_body = send_request_body
        self.cache_ttl = cache_ttl
        self.timeout = timeout
        self.max_entries = max_entries
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: OrderedDict[bytes, tuple[float, AuthorizerDecision | _Denied]] = OrderedDict()
        self._flights: dict[bytes, asyncio.Task[_Outcome]] = {}

    def __repr__(self) -> str:
        # Never the URL: it may carry credentials.
        return f"<Authorizer mode={self.mode} cache_ttl={self.cache_ttl}>"

    @property
    def cached_entries(self) -> int:
        return len(self._cache)

    async def authorize(self, headers: Sequence[tuple[bytes, bytes]], request: Any | None) -> AuthorizerDecision:
        """The decision for these client headers (raw ASGI pairs) and decoded GraphQL request.

        Raises :class:`AuthorizerDenied` (401) or :class:`AuthorizerUnavailable` (503).
        """
        forwarded = forwarded_headers(headers)
        if self.cache_ttl == 0:
            outcome, _ = await self._call(forwarded, request)
            return _unwrap(outcome)
        key = _cache_key(forwarded)
        cached = self._lookup(key)
        if cached is not None:
            return _unwrap(cached)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.get_running_loop().create_task(self._call_and_remember(key, forwarded, request))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        # shield: a waiter that is cancelled (client gone) must not cancel the call the others share.
        return _unwrap(await asyncio.shield(flight))

    def _lookup(self, key: bytes) -> AuthorizerDecision | _Denied | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        valid_until, outcome = entry
        if self._clock() >= valid_until:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return outcome

    def _land(self, key: bytes, done: asyncio.Task[_Outcome]) -> None:
        if self._flights.get(key) is done:
            del self._flights[key]
        if not done.cancelled():
            done.exception()  # retrieved: a crash is re-raised to the waiters, not reported as lost

    async def _call_and_remember(
        self, key: bytes, forwarded: Sequence[tuple[bytes, bytes]], request: Any | None
    ) -> _Outcome:
        outcome, ttl = await self._call(forwarded, request)
        if ttl > 0 and not isinstance(outcome, _Failed):
            self._cache[key] = (self._clock() + ttl, outcome)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return outcome

    async def _call(self, forwarded: Sequence[tuple[bytes, bytes]], request: Any | None) -> tuple[_Outcome, float]:
        """One hook call: its outcome and how long it may be cached (failures: 0, logged once here)."""
        try:
            async with asyncio.timeout(self.timeout):
                status, body = await self._exchange(forwarded, request)
            if status == 401:
                return _DENIED, min(self.cache_ttl, DENIAL_TTL)
            if status != 200:
                raise _HookError("http_status", status=status)
            decision, hook_ttl = _parse_decision(body, self._wall_clock())
        except _HookError as exc:
            logger.warning("authorizer_unavailable", extra={"reason": exc.reason, "status": exc.status})
            return _Failed(exc.reason, exc.message), 0.0
        except (TimeoutError, httpx.TimeoutException):
            logger.warning("authorizer_unavailable", extra={"reason": "timeout"})
            return _Failed("timeout", "The authorization hook did not answer in time"), 0.0
        except httpx.HTTPError as exc:
            logger.warning("authorizer_unavailable", extra={"reason": type(exc).__name__})
            return _Failed(type(exc).__name__, AuthorizerUnavailable.default_message), 0.0
        return decision, self.cache_ttl if hook_ttl is None else min(self.cache_ttl, hook_ttl)

    async def _exchange(self, forwarded: Sequence[tuple[bytes, bytes]], request: Any | None) -> tuple[int, bytes]:
        if self.mode == "GET":
            headers = [*forwarded, (b"user-agent", _USER_AGENT), (b"accept", b"application/json")]
            content = None
        else:
            payload: dict[str, Any] = {"headers": _headers_object(forwarded)}
            if self.send_request_body and request is not None:
                payload["request"] = request
            headers = [
                (b"user-agent", _USER_AGENT),
                (b"accept", b"application/json"),
                (b"content-type", b"application/json"),
            ]
            content = orjson.dumps(payload)
        async with self._client.stream(
            self.mode,
            self._url,
            headers=headers,
            content=content,
            timeout=self.timeout,
            # The URL is fixed by configuration and must stay that way (SSRF).
            follow_redirects=False,
        ) as response:
            if response.status_code != 200:
                return response.status_code, b""
            declared = response.headers.get("content-length", "")
            if _DIGITS.fullmatch(declared) and int(declared) > MAX_RESPONSE_BYTES:
                raise _HookError("too_large")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise _HookError("too_large")
            return 200, bytes(body)


def _unwrap(outcome: _Outcome) -> AuthorizerDecision:
    if isinstance(outcome, AuthorizerDecision):
        return outcome
    if isinstance(outcome, _Denied):
        raise AuthorizerDenied()
    raise AuthorizerUnavailable(outcome.message)
