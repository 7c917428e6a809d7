"""Handshake (Origin, path, subprotocol, TLS) and connection_init (credentials, spoofing, close codes)."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from edge.app import EdgeApp, create_app
from edge.plans import Plan, RateLimit
from tests.edge.conftest import edge_settings, start_edge_app
from tests.edge.ws.conftest import LEGACY, TRANSPORT, TLSFiles, WssEdge, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import hasura_claims, mint

ORIGIN = "https://app.example.com"


async def _handshake_status(edge: WssEdge, path: str = "/graphql", **options: object) -> int:
    try:
        ws = await connect(edge.url_at(path), ssl=edge.ssl(), subprotocols=[TRANSPORT], open_timeout=5, **options)  # type: ignore[list-item,arg-type]
    except InvalidStatus as refused:
        return refused.response.status_code
    await ws.close()
    return 101


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (ORIGIN, 101),
        ("https://evil.example", 403),
        ("null", 403),
        ("https://app.example.com.evil.example", 403),
        ("https://APP.example.com", 403),
        ("http://app.example.com", 403),
    ],
)
async def test_origin_is_matched_exactly_before_the_upgrade(
    start_wss_edge: WssEdgeFactory, origin: str, status: int
) -> None:
    edge = start_wss_edge(allowed_origins=[ORIGIN])
    assert await _handshake_status(edge, origin=origin) == status


async def test_a_client_without_origin_may_upgrade_but_needs_credentials(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.send({"type": "connection_init"})
        assert (await client.closed())[0] == 4403


NOT_FOUND = {"errors": [{"message": "resource does not exist", "extensions": {"code": "not-found"}}]}


def _upgrade_request(path: str, *extra_headers: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: localhost",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Protocol: {TRANSPORT}",
        *extra_headers,
    ]
    return "\r\n".join([*lines, "", ""]).encode()


def _plain_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()


async def _answer_then_close(edge: WssEdge, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the answer to ``request`` on a new connection, read to its end: this
    returns only once the edge has closed the connection."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", edge.server.port, ssl=edge.ssl(), server_hostname="localhost"
    )
    try:
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), 10)  # read() returns at the end of the stream only
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


async def test_an_upgrade_on_a_path_without_a_websocket_route_gets_the_http_not_found(wss_edge: WssEdge) -> None:
    # Hasura's Relay and deprecated v1alpha1 paths are not served (edge.graphql_paths), nor its admin APIs.
    for path in ("/nope", "/v1/metadata", "/v1beta1/relay", "/v1alpha1/graphql", "/graphql/", "/v1/graphql/", "/"):
        status, headers, body = await _answer_then_close(wss_edge, _upgrade_request(path))
        assert status == 404, path
        assert json.loads(body) == NOT_FOUND, path
        assert (status, body) == (await _answer_then_close(wss_edge, _plain_request(path)))[::2], path
        assert headers["content-type"] == "application/json"
        assert int(headers["content-length"]) == len(body)
        assert headers["connection"] == "close"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["strict-transport-security"].startswith("max-age=")  # the edge terminates TLS here
    for path in ("/graphql", "/v1/graphql"):
        assert await _handshake_status(wss_edge, path) == 101, path


async def test_a_path_served_over_http_only_has_no_websocket_route(wss_edge: WssEdge) -> None:
    assert (await _answer_then_close(wss_edge, _plain_request("/healthz")))[0] == 200
    status, _, body = await _answer_then_close(wss_edge, _upgrade_request("/healthz"))
    assert (status, json.loads(body)) == (404, NOT_FOUND)


async def test_the_path_is_checked_before_the_origin(wss_edge: WssEdge) -> None:
    status, _, body = await _answer_then_close(wss_edge, _upgrade_request("/nope", "Origin: https://evil.example"))
    assert (status, json.loads(body)) == (404, NOT_FOUND)
    assert await _handshake_status(wss_edge, "/graphql", origin="https://evil.example") == 403


async def test_without_a_websocket_handler_no_path_has_a_websocket_route(
    hasura_server: tuple[HasuraDouble, RunningServer], tls_files: TLSFiles
) -> None:
    settings = edge_settings(hasura_server[1].url, tls_cert_file=tls_files.cert, tls_key_file=tls_files.key)
    full = create_app(settings)
    app = EdgeApp(full.graphql, full.framework, schema_source=full.schema_source, costs=full.costs)
    server = start_edge_app(app, settings)
    try:
        status, _, body = await _answer_then_close(WssEdge(server, tls_files), _upgrade_request("/graphql"))
    finally:
        server.stop()
    assert (status, json.loads(body)) == (404, NOT_FOUND)


async def test_https_and_wss_share_the_port(wss_edge: WssEdge) -> None:
    async with httpx.AsyncClient(verify=wss_edge.ssl()) as client:
        response = await client.get(f"{wss_edge.https_url}/healthz")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("offered", "chosen", "upstream"),
    [
        ([TRANSPORT, LEGACY], TRANSPORT, TRANSPORT),
        ([LEGACY], LEGACY, LEGACY),
        (None, None, LEGACY),
    ],
)
async def test_subprotocol_choice_is_relayed_to_hasura(
    wss_edge: WssEdge, hasura: HasuraDouble, offered: list[str] | None, chosen: str | None, upstream: str
) -> None:
    ws = await connect(wss_edge.url, ssl=wss_edge.ssl(), subprotocols=offered, open_timeout=5)  # type: ignore[arg-type]
    try:
        assert ws.subprotocol == chosen
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer()}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
    finally:
        await ws.close()
    assert [c.subprotocol for c in hasura.ws.connections] == [upstream]


async def test_an_unknown_subprotocol_only_is_closed_with_4406(wss_edge: WssEdge) -> None:
    ws = await connect(wss_edge.url, ssl=wss_edge.ssl(), subprotocols=["mqtt"], open_timeout=5)  # type: ignore[list-item]
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4406


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_connection_init_must_arrive_in_time(start_wss_edge: WssEdgeFactory, subprotocol: str) -> None:
    edge = start_wss_edge(ws_init_timeout_seconds=0.3)
    async with open_client(edge, subprotocol) as client:
        assert (await client.closed())[0] == 4408


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_an_operation_before_the_ack_closes_with_4401(wss_edge: WssEdge, subprotocol: str) -> None:
    async with open_client(wss_edge, subprotocol) as client:
        await client.subscribe("1", "subscription { users { id } }")
        assert (await client.closed())[0] == 4401


async def test_refused_credentials_close_with_4403_on_graphql_transport_ws(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.send(
            {"type": "connection_init", "payload": {"headers": {"Authorization": "Bearer nope.nope.nope"}}}
        )
        assert await client.closed() == (4403, '{"server_error_msg":"4403: Forbidden"}')  # Hasura's reason


async def test_refused_credentials_get_connection_error_then_close_on_graphql_ws(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, LEGACY) as client:
        reply = await client.init({"headers": {"Authorization": "Bearer nope.nope.nope"}})
        assert reply["type"] == "connection_error" and isinstance(reply["payload"], str)
        assert (await client.closed())[0] == 4400


async def test_an_expired_token_is_refused_at_init(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.send({"type": "connection_init", "payload": bearer(expires_in=-5)})
        assert (await client.closed())[0] == 4403


@pytest.mark.parametrize(
    "payload",
    [
        {"headers": {"Authorization": "Bearer {token}"}},
        {"headers": {"authorization": "Bearer {token}"}},
        {"Authorization": "Bearer {token}"},
        {"authorization": "Bearer {token}"},
        {"authToken": "{token}"},
        {"authToken": "Bearer {token}"},
    ],
)
async def test_each_documented_payload_form_authenticates(
    wss_edge: WssEdge, hasura: HasuraDouble, payload: dict[str, object]
) -> None:
    token = mint(hasura_claims("user-7"))
    filled = json.loads(json.dumps(payload).replace("{token}", token))
    async with open_client(wss_edge, TRANSPORT) as client:
        assert await client.init(filled) == {"type": "connection_ack"}
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "user-7"}


async def test_the_handshake_authorization_header_authenticates(wss_edge: WssEdge, hasura: HasuraDouble) -> None:
    headers = {"Authorization": f"Bearer {mint(hasura_claims('user-8'))}"}
    async with open_client(wss_edge, TRANSPORT, additional_headers=headers) as client:
        assert await client.init() == {"type": "connection_ack"}
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "user-8"}


@pytest.mark.parametrize("value", [42, None, ["Bearer x"], {"headers": "x"}, "Bearer a\r\nx-hasura-role: admin"])
async def test_non_string_credentials_are_refused_with_4400(wss_edge: WssEdge, value: object) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.send({"type": "connection_init", "payload": {"headers": {"Authorization": value}}})
        assert (await client.closed())[0] == 4400


async def test_a_second_connection_init_closes_with_4429(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        assert await client.init(bearer()) == {"type": "connection_ack"}
        await client.send({"type": "connection_init", "payload": bearer()})
        assert (await client.closed())[0] == 4429


SPOOFED = {
    "X-Hasura-Admin-Secret": "double-admin-secret-for-tests",
    "x-hasura-admin-secret": "guess",
    "X-HASURA-USER-ID": "victim",
    "x_hasura_user_id": "victim",
    "x-hasura-use-backend-only-permissions": "true",
    "X-Hasura-Access-Key": "guess",
    "x-hasura-org-id": "other-org",
    "X-Request-Id": "client-chosen",
}


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_the_upstream_init_carries_only_edge_made_identity(
    wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str
) -> None:
    token = mint(hasura_claims("user-9", **{"x-hasura-org-id": "org-1"}))
    payload = {
        "headers": {"Authorization": f"Bearer {token}", **SPOOFED},
        **SPOOFED,
        "x-hasura-role": "admin",  # top-level keys are not credentials: ignored
    }
    handshake = {"X-Hasura-Role": "user", "X-Hasura-User-Id": "victim", "X-Hasura-Admin-Secret": "guess"}
    async with open_client(wss_edge, subprotocol, additional_headers=handshake) as client:
        assert await client.init(payload) == {"type": "connection_ack"}
    (connection,) = hasura.ws.connections
    sent = connection.init_payload
    assert set(sent) == {"headers"}
    headers = sent["headers"]
    assert set(headers) == {
        "x-hasura-admin-secret",
        "x-hasura-role",
        "x-hasura-user-id",
        "x-hasura-org-id",
        "x-request-id",
    }
    assert headers["x-hasura-user-id"] == "user-9" and headers["x-hasura-org-id"] == "org-1"
    assert connection.session == {"x-hasura-role": "user", "x-hasura-user-id": "user-9", "x-hasura-org-id": "org-1"}


async def test_a_requested_role_outside_the_allowed_roles_is_refused(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        payload = bearer()
        payload["headers"]["x-hasura-role"] = "admin"
        await client.send({"type": "connection_init", "payload": payload})
        assert (await client.closed())[0] == 4403


async def test_an_allowed_requested_role_is_used(wss_edge: WssEdge, hasura: HasuraDouble) -> None:
    payload = bearer()
    payload["headers"]["X-Hasura-Role"] = "editor"
    async with open_client(wss_edge, TRANSPORT) as client:
        assert await client.init(payload) == {"type": "connection_ack"}
    assert hasura.ws.connections[0].session == {"x-hasura-role": "editor", "x-hasura-user-id": "user-1"}


async def test_the_connection_rate_per_key_closes_with_4429(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(ws_connections_per_second=0.01, ws_connection_burst=2)
    for _ in range(2):
        async with open_client(edge, TRANSPORT) as client:
            assert await client.init(bearer()) == {"type": "connection_ack"}
    async with open_client(edge, TRANSPORT) as client:
        await client.send({"type": "connection_init", "payload": bearer()})
        assert (await client.closed())[0] == 4429


async def test_hasura_unreachable_at_init_closes_with_1013(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(hasura_url="http://127.0.0.1:9", upstream_connect_timeout_seconds=1.0)
    async with open_client(edge, TRANSPORT) as client:
        await client.send({"type": "connection_init", "payload": bearer()})
        assert (await client.closed())[0] == 1013


class _PlanWithConnectionRate(Plan):
    """A plan carrying its own connection rate (what ``Bridge._admit`` reads when plans define one)."""

    ws_connection_rate: RateLimit | None = None


async def test_a_plans_own_connection_rate_wins(start_wss_edge: WssEdgeFactory) -> None:
    plan = _PlanWithConnectionRate(ws_connection_rate=RateLimit(requests_per_second=0.01, burst=1))
    edge = start_wss_edge(plans={"default": plan})
    async with open_client(edge, TRANSPORT) as client:
        assert await client.init(bearer()) == {"type": "connection_ack"}
    async with open_client(edge, TRANSPORT) as client:
        await client.send({"type": "connection_init", "payload": bearer()})
        assert (await client.closed())[0] == 4429
