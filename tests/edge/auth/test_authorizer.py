"""Authorizer against a real auth webhook on a loopback port; cache time comes from a fake clock."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from edge.auth.authorizer import (
    DENIAL_TTL,
    MAX_RESPONSE_BYTES,
    Authorizer,
    AuthorizerDecision,
    AuthorizerDenied,
    AuthorizerUnavailable,
    forwarded_headers,
)
from edge.errors import AuthenticationError, ServiceUnavailable
from tests.support.servers import RunningServer, start_server

from .helpers import Clock

T0 = 1000.0
WALL = 1_800_000_000.0
ALLOW = {"X-Hasura-Role": "user", "X-Hasura-User-Id": "42", "X-Hasura-Org-Id": "7"}
TOKEN = b"Bearer token-of-alice"


@dataclass
class Call:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)

    @property
    def names(self) -> set[bytes]:
        return {key for key, _ in self.headers}


@dataclass
class HookApp:
    """A tiny auth webhook: answers with ``status`` and ``body`` (a dict is sent as JSON), records every call."""

    status: int = 200
    body: Any = field(default_factory=lambda: dict(ALLOW))
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    generation: int = 0
    """Bumped by :meth:`reset`: a slow answer still pending from an earlier test ends at once."""

    def reset(self) -> None:
        self.generation += 1
        self.status, self.body, self.extra_headers, self.delay, self.calls = 200, dict(ALLOW), [], 0.0, []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append(Call(scope["method"], scope["path"], list(scope["headers"]), body))
        generation, waited = self.generation, 0.0
        while waited < self.delay and generation == self.generation:
            await asyncio.sleep(0.01)
            waited += 0.01
        payload = self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)
        headers = [(b"content-type", b"application/json"), *self.extra_headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def hook_server() -> Iterator[tuple[HookApp, RunningServer]]:
    app = HookApp()
    running = start_server(app, lifespan="off")
    try:
        yield app, running
    finally:
        app.reset()
        running.stop()


@pytest.fixture
def hook(hook_server: tuple[HookApp, RunningServer]) -> Iterator[tuple[HookApp, RunningServer]]:
    app, _ = hook_server
    app.reset()
    yield hook_server
    app.reset()


# One context for every client: building one loads the CA bundle (tens of ms).
_TLS = ssl.create_default_context()
# A fresh connection per call: on a reused loopback connection the test server's two writes
# (head, body) meet Nagle + delayed ACK and every call costs ~40 ms.
_NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)


def new_client(**options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=_TLS, limits=_NO_KEEPALIVE, **options)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client() as http:
        yield http


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def make(running: RunningServer, client: httpx.AsyncClient, clock: Clock, **options: Any) -> Authorizer:
    options.setdefault("wall_clock", lambda: WALL)
    return Authorizer(f"{running.url}/hook", client=client, clock=clock, **options)


def request_headers(token: bytes = TOKEN, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", token), *extra]


# --- what the hook receives ---------------------------------------------------------------------

CLIENT_HEADERS = [
    (b"host", b"edge.example"),
    (b"authorization", TOKEN),
    (b"cookie", b"sid=abc"),
    (b"cookie", b"theme=dark"),
    (b"x-custom", b"kept"),
    (b"content-length", b"123"),
    (b"content-md5", b"abc"),
    (b"user-agent", b"browser/1"),
    (b"origin", b"https://app.example"),
    (b"referer", b"https://app.example/page"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip"),
    (b"accept-language", b"fr"),
    (b"accept-datetime", b"Thu, 31 May 2007 20:35:00 GMT"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    (b"dnt", b"1"),
    (b"content-type", b"application/json"),
    (b"transfer-encoding", b"chunked"),
    (b"x-hasura-role", b"admin"),
    (b"X-Hasura-User-Id", b"1"),
    (b"x-hasura-admin-secret", b"guess"),
    (b"x-api-key", b"key-123"),
]
DROPPED = {
    b"content-md5",
    b"origin",
    b"referer",
    b"accept-language",
    b"accept-datetime",
    b"cache-control",
    b"dnt",
    b"content-type",
    b"transfer-encoding",
    b"x-hasura-role",
    b"x-hasura-user-id",
    b"x-hasura-admin-secret",
    b"x-api-key",
}


def test_forwarded_headers_drop_the_ignore_list_and_client_identity_claims() -> None:
    assert forwarded_headers(CLIENT_HEADERS) == [
        (b"authorization", TOKEN),
        (b"cookie", b"sid=abc"),
        (b"cookie", b"theme=dark"),
        (b"x-custom", b"kept"),
    ]


async def test_get_forwards_the_client_headers_minus_the_ignore_list_and_x_hasura(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    await make(running, client, clock).authorize(CLIENT_HEADERS, {"query": "{ a }"})
    (call,) = app.calls
    assert (call.method, call.path, call.body) == ("GET", "/hook", b"")
    assert call.header(b"authorization") == TOKEN
    assert [value for key, value in call.headers if key == b"cookie"] == [b"sid=abc", b"theme=dark"]
    assert call.header(b"x-custom") == b"kept"
    assert not call.names & DROPPED
    # The hook sees the edge's own transport headers, never the client's.
    assert call.header(b"host") == f"{running.host}:{running.port}".encode()
    assert call.header(b"user-agent") == b"hasura-edge-authorizer"
    assert call.header(b"content-length") is None


async def test_post_sends_the_filtered_headers_and_the_single_request(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    request = {"query": "query Q($id: Int!) { a(id: $id) }", "variables": {"id": 1}, "operationName": "Q"}
    await make(running, client, clock, mode="POST").authorize(CLIENT_HEADERS, request)
    (call,) = app.calls
    assert call.method == "POST"
    assert call.header(b"content-type") == b"application/json"
    assert call.header(b"authorization") is None  # credentials travel in the body only
    assert orjson.loads(call.body) == {
        "headers": {"authorization": TOKEN.decode(), "cookie": "sid=abc; theme=dark", "x-custom": "kept"},
        "request": request,
    }


async def test_post_sends_a_batch_as_the_array(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    batch = [{"query": "{ a }"}, {"query": "{ b }"}]
    await make(running, client, clock, mode="POST").authorize(request_headers(), batch)
    assert orjson.loads(app.calls[0].body)["request"] == batch


@pytest.mark.parametrize(
    ("send_request_body", "request_"),
    [(False, {"query": "{ a }"}), (True, None)],
    ids=["send_request_body-false", "no-request"],
)
async def test_post_omits_request_without_body(
    hook: tuple[HookApp, RunningServer],
    client: httpx.AsyncClient,
    clock: Clock,
    send_request_body: bool,
    request_: Any,
) -> None:
    app, running = hook
    authorizer = make(running, client, clock, mode="POST", send_request_body=send_request_body)
    await authorizer.authorize(request_headers(), request_)
    assert orjson.loads(app.calls[0].body) == {"headers": {"authorization": TOKEN.decode()}}


# --- what the hook's answer means ---------------------------------------------------------------


async def test_allow_builds_a_session_with_lower_cased_variables_and_user_id(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.body = {**ALLOW, "X-Hasura-Admin-Secret": "nope", "X-Hasura-Use-Backend-Only-Permissions": "true", "a": "b"}
    decision = await make(running, client, clock).authorize(request_headers(), None)
    assert isinstance(decision, AuthorizerDecision)
    assert decision.expires_at is None
    assert decision.session.role == "user"
    assert decision.session.user_id == "42"
    # Reserved names are dropped (session_from_claims); keys that are not x-hasura-* are not variables.
    assert dict(decision.session.variables) == {"x-hasura-user-id": "42", "x-hasura-org-id": "7"}


async def test_deny_raises_authorizer_denied_like_hasura(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.status, app.body = 401, {"error": "expired"}
    with pytest.raises(AuthorizerDenied) as caught:
        await make(running, client, clock).authorize(request_headers(), None)
    error = caught.value
    assert isinstance(error, AuthenticationError)
    assert (error.status, error.code) == (401, "authorizer-denied")
    assert error.message == "Authentication hook unauthorized this request"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(500, ALLOW, "http_status", id="500"),
        pytest.param(403, ALLOW, "http_status", id="403"),
        pytest.param(200, b"<html>not json</html>", "not_json", id="garbage"),
        pytest.param(200, b'["X-Hasura-Role", "user"]', "not_an_object", id="not-an-object"),
        pytest.param(200, {"X-Hasura-User-Id": "42"}, "missing_role", id="missing-role"),
        pytest.param(200, {"X-Hasura-Role": "user", "X-Hasura-User-Id": 42}, "non_string_value", id="non-string"),
        pytest.param(200, {"X-Hasura-Role": None}, "non_string_value", id="null-role"),
        pytest.param(200, {"X-Hasura-Role": "user", "X-Hasura-Org_Id": "7"}, "invalid_session_variable", id="bad-name"),
        pytest.param(
            200, {"X-Hasura-Role": "user", "X-Hasura-User-Id": "4\r\n2"}, "invalid_session_variable", id="crlf"
        ),
        pytest.param(200, {"X-Hasura-Role": ""}, "invalid_session_variable", id="empty-role"),
        pytest.param(200, {"X-Hasura-Role": "user", "x-hasura-role": "admin"}, "conflicting_keys", id="ambiguous"),
        # Hasura refuses a Cache-Control it cannot read a max-age from.
        pytest.param(200, {**ALLOW, "Cache-Control": "public"}, "invalid_cache_control", id="no-max-age"),
        pytest.param(200, {**ALLOW, "Cache-Control": "max-age=\u00b2"}, "invalid_cache_control", id="non-ascii"),
        pytest.param(200, {"X-Hasura-Role": "u", "X-Hasura-Pad": "x" * MAX_RESPONSE_BYTES}, "too_large", id="big"),
    ],
)
async def test_answers_outside_the_contract_raise_authorizer_unavailable(
    hook: tuple[HookApp, RunningServer],
    client: httpx.AsyncClient,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: Any,
    reason: str,
) -> None:
    app, running = hook
    app.status, app.body = status, body
    authorizer = make(running, client, clock)
    with (
        caplog.at_level(logging.WARNING, logger="edge.auth.authorizer"),
        pytest.raises(AuthorizerUnavailable) as caught,
    ):
        await authorizer.authorize(request_headers(), None)
    error = caught.value
    assert isinstance(error, ServiceUnavailable)
    assert (error.status, error.code) == (503, "authorizer-unavailable")
    assert "token-of-alice" not in error.message
    assert "127.0.0.1" not in error.message
    (record,) = [r for r in caplog.records if r.name == "edge.auth.authorizer"]
    assert record.getMessage() == "authorizer_unavailable"
    assert record.__dict__["reason"] == reason
    assert "token-of-alice" not in caplog.text
    assert authorizer.cached_entries == 0


async def test_oversized_body_with_a_content_length_is_refused(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.body = {"X-Hasura-Role": "user", "X-Hasura-Pad": "x" * MAX_RESPONSE_BYTES}
    app.extra_headers = [(b"content-length", str(len(orjson.dumps(app.body))).encode())]
    with pytest.raises(AuthorizerUnavailable):
        await make(running, client, clock).authorize(request_headers(), None)


async def test_missing_role_message_names_the_missing_variable(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.body = {"X-Hasura-User-Id": "42"}
    with pytest.raises(AuthorizerUnavailable, match="x-hasura-role not found in session variables"):
        await make(running, client, clock).authorize(request_headers(), None)


async def test_slow_hook_raises_authorizer_unavailable_at_the_timeout(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    # A hook that never answers (until the test ends): only the authorizer's own timeout can end the call.
    app.delay = math.inf
    with pytest.raises(AuthorizerUnavailable, match="did not answer in time"):
        await asyncio.wait_for(make(running, client, clock, timeout=1.0).authorize(request_headers(), None), 30)
    # One that is slow but answers within the timeout is waited for.
    app.delay = 0.1
    decision = await make(running, client, clock, timeout=1.0).authorize(request_headers(), None)
    assert decision.session.user_id == "42"


async def test_unreachable_hook_raises_authorizer_unavailable_without_the_url_credentials(
    client: httpx.AsyncClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.support.servers import free_loopback_socket

    sock = free_loopback_socket()  # bound, never listening: connection refused
    host, port = sock.getsockname()[:2]
    try:
        authorizer = Authorizer(f"http://hookuser:s3cret@{host}:{port}/hook", client=client, clock=clock)
        with caplog.at_level(logging.WARNING), pytest.raises(AuthorizerUnavailable) as caught:
            await authorizer.authorize(request_headers(), None)
    finally:
        sock.close()
    assert "s3cret" not in caught.value.message
    assert "s3cret" not in caplog.text
    assert "s3cret" not in repr(authorizer)


async def test_redirects_are_not_followed(hook: tuple[HookApp, RunningServer], clock: Clock) -> None:
    redirect, with_redirect = hook
    target = HookApp()
    with_target = start_server(target, lifespan="off")
    redirect.status, redirect.body = 302, b""
    redirect.extra_headers = [(b"location", f"{with_target.url}/hook".encode())]
    try:
        for follow in (False, True):  # whatever the shared client's own setting
            async with new_client(follow_redirects=follow) as http:
                authorizer = Authorizer(f"{with_redirect.url}/hook", client=http, clock=clock)
                with pytest.raises(AuthorizerUnavailable):
                    await authorizer.authorize(request_headers(), None)
        assert len(redirect.calls) == 2
        assert target.calls == []
    finally:
        with_target.stop()


# --- expiry from the body -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expires_at"),
    [
        ({"Cache-Control": "max-age=600"}, WALL + 600),
        ({"cache-control": "private, max-age=60"}, WALL + 60),
        ({"Expires": email.utils.formatdate(WALL + 120, usegmt=True)}, WALL + 120),
        ({"Cache-Control": "max-age=30", "Expires": email.utils.formatdate(WALL + 120, usegmt=True)}, WALL + 30),
        ({"Cache-Control": "no-store"}, None),
        ({"Expires": "not a date"}, None),
    ],
)
async def test_body_cache_control_and_expires_set_expires_at_on_the_wall_clock(
    hook: tuple[HookApp, RunningServer],
    client: httpx.AsyncClient,
    clock: Clock,
    extra: dict[str, str],
    expires_at: float | None,
) -> None:
    app, running = hook
    app.body = {**ALLOW, **extra}
    decision = await make(running, client, clock).authorize(request_headers(), None)
    assert decision.expires_at == expires_at
    assert "cache-control" not in decision.session.variables
    assert "expires" not in decision.session.variables


# --- caching ------------------------------------------------------------------------------------


async def test_repeated_credential_calls_the_hook_once(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    authorizer = make(running, client, clock, mode="POST")
    first = await authorizer.authorize(request_headers(), {"query": "{ a }"})
    # The request body does not vary the key: the hook decides identity, not the operation.
    second = await authorizer.authorize(request_headers(), {"query": "{ b }"})
    # Nor do per-request correlation headers.
    third = await authorizer.authorize(request_headers(TOKEN, (b"x-request-id", b"r-3")), None)
    assert first == second == third
    assert len(app.calls) == 1


async def test_different_credentials_call_the_hook_again(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    authorizer = make(running, client, clock)
    await authorizer.authorize(request_headers(b"Bearer a"), None)
    await authorizer.authorize(request_headers(b"Bearer b"), None)
    await authorizer.authorize(request_headers(b"Bearer a", (b"cookie", b"sid=1")), None)
    await authorizer.authorize(request_headers(b"Bearer a", (b"x-custom", b"1")), None)
    await authorizer.authorize(request_headers(b"Bearer a"), None)
    assert len(app.calls) == 4


async def test_cached_decision_expires_after_cache_ttl(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    authorizer = make(running, client, clock, cache_ttl=60)
    await authorizer.authorize(request_headers(), None)
    clock.advance(59.9)
    await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 1
    clock.advance(0.1)
    await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 2


@pytest.mark.parametrize(
    "extra",
    [{"Cache-Control": "max-age=1"}, {"Expires": email.utils.formatdate(WALL + 1, usegmt=True)}],
    ids=["max-age", "expires"],
)
async def test_body_lifetime_shorter_than_cache_ttl_wins(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock, extra: dict[str, str]
) -> None:
    app, running = hook
    app.body = {**ALLOW, **extra}
    authorizer = make(running, client, clock, cache_ttl=300)
    decision = await authorizer.authorize(request_headers(), None)
    assert decision.expires_at == WALL + 1
    clock.advance(0.5)
    await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 1
    clock.advance(0.5)
    await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 2


async def test_body_lifetime_longer_than_cache_ttl_is_capped(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.body = {**ALLOW, "Cache-Control": "max-age=3600"}
    authorizer = make(running, client, clock, cache_ttl=10)
    await authorizer.authorize(request_headers(), None)
    clock.advance(10)
    await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 2


@pytest.mark.parametrize("extra", [{"Cache-Control": "no-cache"}, {"Cache-Control": "max-age=0"}, {"Expires": "?"}])
async def test_body_that_forbids_caching_is_not_cached(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock, extra: dict[str, str]
) -> None:
    app, running = hook
    app.body = {**ALLOW, **extra}
    authorizer = make(running, client, clock)
    await authorizer.authorize(request_headers(), None)
    await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 2


async def test_cache_ttl_zero_calls_the_hook_every_time(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    authorizer = make(running, client, clock, mode="POST", cache_ttl=0)
    await authorizer.authorize(request_headers(), {"query": "{ a }"})
    await authorizer.authorize(request_headers(), {"query": "{ b }"})
    # No single flight either: concurrent requests each carry their own operation to the hook.
    app.delay = 0.1
    await asyncio.gather(*(authorizer.authorize(request_headers(), {"query": f"{{ c{i} }}"}) for i in range(3)))
    assert len(app.calls) == 5
    assert {orjson.loads(call.body)["request"]["query"] for call in app.calls[2:]} == {"{ c0 }", "{ c1 }", "{ c2 }"}
    assert authorizer.cached_entries == 0


async def test_denial_is_cached_for_at_most_the_denial_ttl(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.status = 401
    authorizer = make(running, client, clock)
    for _ in range(3):
        with pytest.raises(AuthorizerDenied):
            await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 1
    app.status = 200
    clock.advance(DENIAL_TTL)
    assert (await authorizer.authorize(request_headers(), None)).session.role == "user"
    assert len(app.calls) == 2


async def test_errors_are_not_cached(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    authorizer = make(running, client, clock)
    for status, body in [(500, ALLOW), (200, b"garbage"), (200, {"X-Hasura-User-Id": "1"})]:
        app.status, app.body = status, body
        with pytest.raises(AuthorizerUnavailable):
            await authorizer.authorize(request_headers(), None)
    app.status, app.body = 200, ALLOW
    await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 4


async def test_concurrent_identical_credentials_share_one_call(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.delay = 0.2
    authorizer = make(running, client, clock)
    decisions = await asyncio.gather(*(authorizer.authorize(request_headers(), None) for _ in range(20)))
    assert len(app.calls) == 1
    assert all(decision is decisions[0] for decision in decisions)


async def test_concurrent_waiters_share_a_failure_without_caching_it(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.status, app.delay = 500, 0.2
    authorizer = make(running, client, clock)
    results = await asyncio.gather(
        *(authorizer.authorize(request_headers(), None) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, AuthorizerUnavailable) for result in results)
    assert len({id(result) for result in results}) == 5  # each waiter raises its own exception
    assert len(app.calls) == 1
    app.status, app.delay = 200, 0.0
    await authorizer.authorize(request_headers(), None)
    assert len(app.calls) == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_call(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    app.delay = 0.2
    authorizer = make(running, client, clock)
    first = asyncio.ensure_future(authorizer.authorize(request_headers(), None))
    second = asyncio.ensure_future(authorizer.authorize(request_headers(), None))
    await asyncio.sleep(0.05)
    first.cancel()
    assert (await second).session.role == "user"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(app.calls) == 1


async def test_cache_is_a_bounded_lru(
    hook: tuple[HookApp, RunningServer], client: httpx.AsyncClient, clock: Clock
) -> None:
    app, running = hook
    authorizer = make(running, client, clock, max_entries=2)
    await authorizer.authorize(request_headers(b"Bearer a"), None)
    await authorizer.authorize(request_headers(b"Bearer b"), None)
    await authorizer.authorize(request_headers(b"Bearer a"), None)  # a is now the most recent
    await authorizer.authorize(request_headers(b"Bearer c"), None)  # evicts b
    assert authorizer.cached_entries == 2
    assert len(app.calls) == 3
    await authorizer.authorize(request_headers(b"Bearer a"), None)
    assert len(app.calls) == 3
    await authorizer.authorize(request_headers(b"Bearer b"), None)
    assert len(app.calls) == 4


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("/relative", {}),
        ("ftp://host/hook", {}),
        ("http://host/hook", {"mode": "PUT"}),
        ("http://host/hook", {"cache_ttl": -1}),
        ("http://host/hook", {"cache_ttl": float("inf")}),
        ("http://host/hook", {"timeout": 0}),
        ("http://host/hook", {"max_entries": 0}),
    ],
)
async def test_invalid_configuration_is_refused(client: httpx.AsyncClient, url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Authorizer(url, client=client, **options)
