"""ACTIONS_MAX_BODY_BYTES: bodies over it are 413 PAYLOAD_TOO_LARGE in the action error format, counted
while they arrive; the default fits the largest documents_history event a document written through the
edge can produce."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from actions.app import create_app
from actions.settings import ActionsSettings
from edge.settings import EdgeSettings
from tests.actions.conftest import ACTION_HEADERS, EVENT_HEADERS, Db, make_settings
from tests.actions.payloads import ORDER_INSERT_EVENT, document_event, payment_request
from tests.actions.test_error_format import assert_action_error
from tests.support.servers import free_loopback_socket, serving

LIMIT = 64 * 1024  # the smallest the setting allows


def offline_app(**overrides: Any) -> Any:
    """The app on a database that refuses connections: a body that gets past the limit and the parser
    ends in TRANSIENT_FAILURE, which tells it apart from a 413 without needing a database."""
    with free_loopback_socket() as sock:
        port = sock.getsockname()[1]
    return create_app(make_settings(f"postgresql://postgres@127.0.0.1:{port}/none", db_connect_timeout=1, **overrides))


@pytest.fixture
async def limited() -> AsyncIterator[httpx.AsyncClient]:
    app = offline_app(max_body_bytes=LIMIT)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://actions.test") as client,
    ):
        yield client


def padded_event(size: int) -> bytes:
    """ORDER_INSERT_EVENT as JSON of exactly ``size`` bytes (padding in trace_context)."""
    event = json.loads(json.dumps(ORDER_INSERT_EVENT))
    event["event"]["trace_context"] = {"pad": ""}
    base = len(json.dumps(event).encode())
    event["event"]["trace_context"]["pad"] = "x" * (size - base)
    raw = json.dumps(event).encode()
    assert len(raw) == size
    return raw


async def test_a_body_at_the_limit_is_read_and_one_byte_more_is_413(limited: httpx.AsyncClient) -> None:
    headers = {**EVENT_HEADERS, "content-type": "application/json"}

    at_limit = await limited.post("/events/order_created", content=padded_event(LIMIT), headers=headers)
    over = await limited.post("/events/order_created", content=padded_event(LIMIT + 1), headers=headers)

    assert_action_error(at_limit, 503, "TRANSIENT_FAILURE")  # got through, then needed the database
    body = assert_action_error(over, 413, "PAYLOAD_TOO_LARGE")
    assert body["extensions"] == {"code": "PAYLOAD_TOO_LARGE", "maxBytes": LIMIT}
    assert over.headers["connection"] == "close"


async def test_an_action_body_over_the_limit_is_a_413_hasura_relays(limited: httpx.AsyncClient) -> None:
    body = payment_request()
    body["request_query"] = "#" * LIMIT
    assert_action_error(
        await limited.post("/actions/processPayment", json=body, headers=ACTION_HEADERS), 413, "PAYLOAD_TOO_LARGE"
    )


async def test_the_secret_is_checked_before_the_size(limited: httpx.AsyncClient) -> None:
    response = await limited.post("/events/order_created", content=b"x" * (LIMIT + 1))
    assert_action_error(response, 401, "UNAUTHORIZED")


async def test_a_content_length_that_understates_the_body_does_not_lift_the_count() -> None:
    """Driven through the ASGI interface: a server frames the body by Content-Length, but the stage must not
    rely on that (chunked bodies have none, and a proxy may differ)."""
    app = offline_app(max_body_bytes=LIMIT)
    chunks = [b"{" + b" " * (LIMIT // 2), b" " * (LIMIT // 2), b"}"]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/events/order_created",
        "raw_path": b"/events/order_created",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"actions.test"),
            (b"content-type", b"application/json"),
            (b"content-length", b"10"),
            (b"x-hasura-webhook-secret", EVENT_HEADERS["X-Hasura-Webhook-Secret"].encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8001),
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)

    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    # The second chunk crossed the limit (LIMIT + 1 bytes so far): the third was never read.
    assert messages == [{"type": "http.request", "body": b"}", "more_body": False}]


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes to the server and read the whole answer (the server closes after a 413)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def request_head(extra: str) -> bytes:
    secret = EVENT_HEADERS["X-Hasura-Webhook-Secret"]
    return (
        "POST /events/order_created HTTP/1.1\r\nHost: actions.test\r\nContent-Type: application/json\r\n"
        f"X-Hasura-Webhook-Secret: {secret}\r\n{extra}\r\n"
    ).encode()


def test_over_a_real_socket_a_large_declared_length_is_refused_before_the_body_is_sent() -> None:
    with serving(offline_app(max_body_bytes=LIMIT)) as server:
        status, headers, body = exchange(server.port, request_head(f"Content-Length: {LIMIT + 1}\r\n"))
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["extensions"] == {"code": "PAYLOAD_TOO_LARGE", "maxBytes": LIMIT}


def test_over_a_real_socket_a_chunked_body_is_counted_as_it_arrives() -> None:
    chunk = b"x" * 16384
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(LIMIT // len(chunk) + 1)) + b"0\r\n\r\n"
    with serving(offline_app(max_body_bytes=LIMIT)) as server:
        status, headers, body = exchange(server.port, request_head("Transfer-Encoding: chunked\r\n") + chunked)
    assert status == 413
    assert json.loads(body)["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


def aeson_json(value: Any) -> bytes:
    """JSON as Hasura's encoder (aeson) writes it: non-ASCII as UTF-8, and every control character but
    \\n, \\r and \\t as \\u00XX (Python writes \\f and \\b as two-character escapes)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return re.sub(
        r"(?<!\\)((?:\\\\)*)\\([fb])", lambda m: m[1] + ("\\u000c" if m[2] == "f" else "\\u0008"), text
    ).encode()


EDGE_MAX_BODY_BYTES = EdgeSettings.model_fields["max_body_bytes"].default
DEFAULT_MAX_BODY_BYTES = ActionsSettings.model_fields["max_body_bytes"].default


def test_the_default_covers_two_documents_at_the_edge_limit_in_the_worst_escaping() -> None:
    assert DEFAULT_MAX_BODY_BYTES >= 6 * EDGE_MAX_BODY_BYTES + 64 * 1024


def largest_contents(kind: str) -> tuple[str, str]:
    """Old and new content as large as one client body of EDGE_MAX_BODY_BYTES can make them."""
    room = EDGE_MAX_BODY_BYTES - 1024  # the GraphQL mutation around the value
    if kind == "form-feeds":  # two bytes in the client's JSON ("\f"), six in Hasura's ("\u000c")
        base = "\f" * (room // 2 - 1)
        return base + "a", base + "b"
    line = "Collaborative document, paragraph text with ünïcødé and tabs\there.\n"
    count = room // len(json.dumps(line, ensure_ascii=False).encode())
    lines = [f"{index:06d} {line}" for index in range(count - 1)]
    edited = list(lines)
    edited[count // 2] = "an edited paragraph in the middle\n"
    return "".join(lines), "".join(edited)


@pytest.mark.postgres
@pytest.mark.parametrize(("kind", "at_least"), [("form-feeds", 5.9), ("prose", 1.9)])
async def test_the_largest_history_event_the_edge_allows_is_recorded_under_the_default(
    database_url: str, db: Db, kind: str, at_least: float
) -> None:
    old, new = largest_contents(kind)
    raw = aeson_json(document_event(old_content=old, new_content=new, old_version=1, new_version=2))
    assert at_least * EDGE_MAX_BODY_BYTES < len(raw) <= DEFAULT_MAX_BODY_BYTES
    app = create_app(make_settings(database_url))  # the default ACTIONS_MAX_BODY_BYTES
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://actions.test") as client,
    ):
        response = await client.post(
            "/events/documents_history", content=raw, headers={**EVENT_HEADERS, "content-type": "application/json"}
        )
    assert response.status_code == 200, response.text[:500]
    assert response.json()["outcome"] == "recorded"
    assert db.value("SELECT content_after = %s FROM document_history WHERE version = 2", new) is True
