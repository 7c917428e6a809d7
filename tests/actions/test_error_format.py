"""Every answer that is not a success is in Hasura's action error format, with a status Hasura acts on.

Hasura relays an action handler's 4xx body (``message``, ``extensions`` verbatim) and turns any other status
into ``internal error`` / ``unexpected`` (Action.hs ``callWebhook``); it retries event webhooks on any non-2xx
and honours ``Retry-After`` (EventTrigger.hs ``retryOrSetError``). So action routes answer 4xx only, event
routes keep 5xx for server-side failures, and every body says why.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from actions.app import create_app
from actions.providers import ChargeRequest, ChargeResult
from tests.actions.conftest import ACTION_HEADERS, EVENT_HEADERS, Db, make_settings
from tests.actions.payloads import ORDER_INSERT_EVENT, payment_request
from tests.support.servers import free_loopback_socket

JSON = {"content-type": "application/json"}
ROUTES = [("/actions/processPayment", ACTION_HEADERS), ("/events/order_created", EVENT_HEADERS)]
ROUTE_IDS = ["action", "event"]


def assert_action_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The body Hasura decodes as ActionWebhookErrorResponse: a non-empty ``message`` and ``extensions``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "extensions"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert body["extensions"]["code"] == code, body
    return body


@pytest.fixture
async def offline() -> AsyncIterator[httpx.AsyncClient]:
    """The app with a database that refuses connections: for answers that must not need one."""
    with free_loopback_socket() as sock:  # bound, never listening
        port = sock.getsockname()[1]
        app = create_app(make_settings(f"postgresql://postgres@127.0.0.1:{port}/none", db_connect_timeout=1))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://actions.test") as client,
        ):
            yield client


# --- Routes and methods --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/", {}),
        ("POST", "/graphql", {}),
        ("POST", "/events/order_deleted", EVENT_HEADERS),
        ("POST", "/actions/refundPayment", ACTION_HEADERS),
    ],
)
async def test_an_unknown_route_is_404_not_found(
    offline: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    body = assert_action_error(await offline.request(method, path, headers=headers), 404, "NOT_FOUND")
    assert path in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "allowed"),
    [
        ("GET", "/events/order_created", EVENT_HEADERS, "POST"),
        ("PUT", "/actions/processPayment", ACTION_HEADERS, "POST"),
        ("POST", "/healthz", {}, "GET"),
    ],
)
async def test_a_wrong_method_is_405_with_allow(
    offline: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], allowed: str
) -> None:
    response = await offline.request(method, path, headers=headers)
    body = assert_action_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == allowed
    assert body["extensions"]["allowed"] == [allowed]


async def test_unknown_protected_paths_still_need_the_secret(offline: httpx.AsyncClient) -> None:
    assert_action_error(await offline.post("/events/order_deleted", json={}), 401, "UNAUTHORIZED")
    assert_action_error(await offline.post("/actions/refundPayment", json={}), 401, "UNAUTHORIZED")


# --- Bodies that are not strict JSON -------------------------------------------------------------

NOT_JSON = [
    (b'{"action": "\xff"}', "INVALID_JSON", "UTF-8"),
    (b"\xef\xbb\xbf{}", "INVALID_JSON", "byte-order mark"),
    (b'{"action": ', "INVALID_JSON", "not valid JSON"),
    (b'{"amount": NaN}', "INVALID_JSON", "NaN"),
    (b"[-Infinity]", "INVALID_JSON", "Infinity"),
    (b'{"n": ' + b"9" * 5000 + b"}", "INVALID_JSON", "not valid JSON"),
    (b'{"key": "\\ud800"}', "INVALID_JSON", "surrogate"),
    (b'{"\\udfff": 1}', "INVALID_JSON", "surrogate"),
    (b'{"a": ' * 129 + b"1" + b"}" * 129, "JSON_TOO_DEEP", "128"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON_TOO_DEEP", "128"),  # beyond what json's decoder can recurse
]
NOT_JSON_IDS = [
    "invalid-utf8",
    "bom",
    "truncated",
    "nan",
    "infinity",
    "integer-over-digit-limit",
    "lone-surrogate",
    "lone-surrogate-key",
    "nested-129",
    "nested-100000",
]


@pytest.mark.parametrize(("path", "headers"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(("raw", "code", "says"), NOT_JSON, ids=NOT_JSON_IDS)
async def test_a_body_that_is_not_strict_json_is_400(
    offline: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    raw: bytes,
    code: str,
    says: str,
) -> None:
    body = assert_action_error(await offline.post(path, content=raw, headers={**headers, **JSON}), 400, code)
    assert says in body["message"]


async def test_nesting_at_the_limit_is_read(offline: httpx.AsyncClient) -> None:
    # 128 levels in all: the body object, trace_context, and 126 more below it.
    event = json.loads(json.dumps(ORDER_INSERT_EVENT))
    event["event"]["trace_context"] = json.loads('{"a": ' * 126 + "1" + "}" * 126)
    response = await offline.post("/events/order_created", json=event, headers=EVENT_HEADERS)
    assert_action_error(response, 503, "TRANSIENT_FAILURE")  # parsed, validated, then the database was needed


@pytest.mark.parametrize(("path", "headers"), ROUTES, ids=ROUTE_IDS)
async def test_a_body_of_the_wrong_shape_is_400_validation_failed(
    offline: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    for raw in (b"", b"[]", b'"text"', b"{}"):
        body = assert_action_error(
            await offline.post(path, content=raw, headers={**headers, **JSON}), 400, "VALIDATION_FAILED"
        )
        assert body["extensions"]["errors"]


# --- Server-side failures ------------------------------------------------------------------------


async def test_a_database_outage_on_an_action_is_a_relayed_4xx_saying_retry_later(offline: httpx.AsyncClient) -> None:
    response = await offline.post("/actions/processPayment", json=payment_request(), headers=ACTION_HEADERS)

    body = assert_action_error(response, 424, "TRANSIENT_FAILURE")
    assert body["extensions"] == {"code": "TRANSIENT_FAILURE", "retryable": True, "retryAfterSeconds": 5}
    assert response.headers["retry-after"] == "5"


async def test_a_database_outage_on_an_event_is_503_with_retry_after(offline: httpx.AsyncClient) -> None:
    response = await offline.post("/events/order_created", json=ORDER_INSERT_EVENT, headers=EVENT_HEADERS)

    body = assert_action_error(response, 503, "TRANSIENT_FAILURE")
    assert body["extensions"] == {"code": "TRANSIENT_FAILURE", "retryable": True, "retryAfterSeconds": 10}
    assert response.headers["retry-after"] == "10"


class BrokenProvider:
    """A provider with a bug: every charge raises something that is not a ProviderError."""

    name = "broken"

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        raise KeyError(request.currency)


@pytest.mark.postgres
async def test_an_unexpected_error_in_an_action_is_a_relayed_4xx_and_frees_the_key(database_url: str, db: Db) -> None:
    app = create_app(make_settings(database_url), provider=BrokenProvider())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # the server would log the traceback
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://actions.test") as client,
    ):
        before = db.counts()
        response = await client.post("/actions/processPayment", json=payment_request(key="k"), headers=ACTION_HEADERS)

    body = assert_action_error(response, 424, "INTERNAL")
    assert body["extensions"]["retryable"] is True
    assert "KeyError" not in response.text and "USD" not in body["message"]  # no internals leak
    assert db.counts() == before  # the claim was released: the same key can be sent again


@pytest.mark.postgres
async def test_an_unexpected_database_error_on_an_event_is_500_internal(client: httpx.AsyncClient, db: Db) -> None:
    db.execute("ALTER TABLE order_confirmations RENAME TO order_confirmations_moved")

    response = await client.post("/events/order_created", json=ORDER_INSERT_EVENT, headers=EVENT_HEADERS)

    body = assert_action_error(response, 500, "INTERNAL")
    assert "order_confirmations" not in body["message"]  # SQL stays in the log
    assert "retry-after" not in response.headers
