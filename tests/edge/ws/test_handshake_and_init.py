"""Handshake (Origin, path, subprotocol, TLS) and connection_init (credentials, spoofing, close codes)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from edge.plans import Plan, RateLimit
from tests.edge.ws.conftest import LEGACY, TRANSPORT, WssEdge, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble
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


async def test_other_paths_refuse_the_upgrade(wss_edge: WssEdge) -> None:
    # Hasura's Relay and deprecated v1alpha1 paths are not served (edge.graphql_paths); /v1/graphql is.
    for path in ("/v1beta1/relay", "/v1alpha1/graphql", "/graphql/", "/v1/graphql/", "/"):
        assert await _handshake_status(wss_edge, path) == 403, path
    assert await _handshake_status(wss_edge, "/v1/graphql") == 101


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
