"""Open sockets and subscriptions are visible in metrics; subscription-seconds are metered per user; each
operation is counted in the request metrics and written to the access log once it ends."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.observability.access_log import operation_hash
from edge.plans import GraphQLLimits, Plan
from tests.edge.ws.conftest import LEGACY, TRANSPORT, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble
from tests.support.tokens import hasura_claims

QUERY = "subscription { products(limit: 1) { id } }"


async def test_gauges_and_subscription_seconds(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(metrics_token="scrape", usage_admin_secret="billing")
    async with httpx.AsyncClient(verify=edge.ssl()) as http:

        async def scrape() -> str:
            response = await http.get(f"{edge.https_url}/metrics", headers={"Authorization": "Bearer scrape"})
            return response.text

        async with open_client(edge, TRANSPORT) as client:
            assert await client.init(bearer(claims=hasura_claims("sub-user"))) == {"type": "connection_ack"}
            await client.subscribe("1", QUERY)
            assert (await client.receive())["type"] == "next"
            text = await scrape()
            assert "edge_websocket_connections 1.0" in text
            assert "edge_subscriptions 1.0" in text
            await asyncio.sleep(0.3)
            await client.send({"type": "complete", "id": "1"})
            await asyncio.sleep(0.2)
        rows: list[dict[str, object]] = []
        for _ in range(50):  # the socket's end is processed just after the client leaves
            report = await http.get(
                f"{edge.https_url}/admin/usage", params={"kind": "user"}, headers={"X-Edge-Usage-Secret": "billing"}
            )
            rows = [row for row in report.json()["subjects"] if row["subject"] == "sub-user"]
            if rows and float(rows[0]["subscription_seconds"]) > 0:  # type: ignore[arg-type]
                break
            await asyncio.sleep(0.05)
        assert rows and float(rows[0]["subscription_seconds"]) >= 0.3  # type: ignore[arg-type]
        assert "edge_subscriptions 0.0" in await scrape()


# --- each operation is counted and logged like an HTTP request -------------------------------------------

SECRET = "variable-value-never-logged"
DEEP = "subscription { users { orders { user { orders { user { id } } } } } }"
MUTATION = 'mutation Pay { insert_orders_one(object: {status: "pending"}) { id } }'


def access_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[dict[str, Any]]:
    """The access-log lines of the socket (each written when its operation ends, just after its last message)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [dict(record.__dict__) for record in caplog.records if record.name == "edge.access"]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


def received_by_hasura(hasura: HasuraDouble, op_id: str) -> bool:
    return any(op["id"] == op_id for connection in hasura.ws.connections for op in connection.operations)


async def until_received(hasura: HasuraDouble, op_id: str) -> None:
    for _ in range(500):
        if received_by_hasura(hasura, op_id):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"Hasura never received {op_id}")


def websocket_series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "transport"))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("transport") == "websocket"
    }


async def test_each_operation_is_counted_and_logged_once_when_it_ends(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, caplog: pytest.LogCaptureFixture
) -> None:
    edge = start_wss_edge(metrics_token="scrape", plans={"default": Plan(graphql=GraphQLLimits(max_depth=3))})
    hasura.ws.hold_mutations = True  # after the start: starting an edge resets the double
    caplog.set_level(logging.INFO, logger="edge.access")
    credentials = bearer(claims=hasura_claims("ws-user"))
    async with open_client(edge, TRANSPORT, additional_headers={"X-Request-Id": "conn-1234"}) as client:
        assert await client.init(credentials) == {"type": "connection_ack"}
        query = "query Named($name: String) { users(where: {name: {_eq: $name}}, limit: 1) { id } }"
        await client.subscribe("q", query, variables={"name": SECRET}, operationName="Named")
        assert (await client.receive())["type"] == "next"
        assert await client.receive() == {"type": "complete", "id": "q"}
        await client.subscribe("deep", DEEP)
        assert (await client.receive())["payload"][0]["extensions"]["code"] == "depth-limit-exceeded"
        await client.subscribe("s", "subscription Live { users(limit: 1) { id } }")
        assert (await client.receive())["id"] == "s"
        await client.subscribe("m", MUTATION)
        await until_received(hasura, "m")  # held by Hasura: no result
        await client.send({"type": "complete", "id": "m"})
        await client.send({"type": "complete", "id": "s"})
        await client.subscribe("open", "subscription { users(limit: 1) { id } }")
        assert (await client.receive())["id"] == "open"
    lines = access_lines(caplog, 5)
    by_id = {line["operation_id"]: line for line in lines}
    assert [line["operation_id"] for line in lines] == ["q", "deep", "m", "s", "open"]  # in the order they ended
    assert {line["request_id"] for line in lines} == {"conn-1234"}
    assert {line["transport"] for line in lines} == {"websocket"}
    assert {(line["role"], line["plan"], line["user_id"]) for line in lines} == {("user", "default", "ws-user")}
    summary = {
        op_id: (line["operation_type"], line["operation_name"], line["outcome"], line["status"], line["error_code"])
        for op_id, line in by_id.items()
    }
    assert summary == {
        "q": ("query", "Named", "completed", 200, None),
        "deep": ("subscription", None, "refused", 400, "depth-limit-exceeded"),
        "m": ("mutation", "Pay", "stopped", 499, None),
        "s": ("subscription", "Live", "stopped", 200, None),
        "open": ("subscription", None, "closed", 200, None),
    }
    assert all(isinstance(line["cost_estimated"], int) for line in lines)
    assert by_id["q"]["operation_hash"] == operation_hash(query)
    assert by_id["s"]["duration_ms"] > 0
    dumped = " ".join(str(line) for line in lines)
    assert SECRET not in dumped
    assert credentials["headers"]["Authorization"].split()[1] not in dumped

    async with httpx.AsyncClient(verify=edge.ssl()) as http:
        scraped = await http.get(f"{edge.https_url}/metrics", headers={"Authorization": "Bearer scrape"})
    series = websocket_series(scraped.text)
    common = (("plan", "default"), ("role", "user"))

    def requests(operation_type: str, status: str) -> float | None:
        labels = tuple(sorted((("operation_type", operation_type), ("status", status), *common)))
        return series.get(("edge_requests_total", labels))

    assert requests("query", "200") == 1
    assert requests("subscription", "400") == 1
    assert requests("mutation", "499") == 1
    assert requests("subscription", "200") == 2
    assert series[("edge_rejections_total", (("code", "depth-limit-exceeded"),))] == 1
    assert len([name for name, _ in series if name == "edge_rejections_total"]) == 1
    duration = (("operation_type", "subscription"), ("plan", "default"))
    assert series[("edge_request_duration_seconds_count", duration)] == 3
    http_series = [line for line in scraped.text.splitlines() if 'transport="http"' in line]
    assert http_series == []  # nothing went over HTTP


async def test_an_operation_the_edge_ends_counts_as_a_rejection_with_its_code(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, caplog: pytest.LogCaptureFixture
) -> None:
    edge = start_wss_edge(metrics_token="scrape")
    hasura.ws.hold_mutations = True
    caplog.set_level(logging.INFO, logger="edge.access")
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("m", MUTATION)
        await until_received(hasura, "m")
        await client.send("{not json")  # a protocol error: 4400, and what is in flight ends first
        message = await client.receive()
        assert (message["id"], message["payload"][0]["extensions"]["code"]) == ("m", "connection-closed")
        assert (await client.closed())[0] == 4400
    [line] = access_lines(caplog, 1)
    assert (line["operation_id"], line["outcome"], line["status"], line["error_code"]) == (
        "m",
        "aborted",
        503,
        "connection-closed",
    )
    async with httpx.AsyncClient(verify=edge.ssl()) as http:
        text = (await http.get(f"{edge.https_url}/metrics", headers={"Authorization": "Bearer scrape"})).text
    assert 'edge_rejections_total{code="connection-closed",transport="websocket"} 1.0' in text


async def test_a_graphql_ws_error_from_hasura_is_one_operation_with_outcome_error(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, caplog: pytest.LogCaptureFixture
) -> None:
    edge = start_wss_edge()
    caplog.set_level(logging.INFO, logger="edge.access")
    async with open_client(edge, LEGACY) as client:
        await client.init(bearer())
        await client.subscribe("bad", "query { users(limit: 1) { no_such_column } }")
        assert (await client.receive())["type"] == "error"
        assert await client.receive() == {"type": "complete", "id": "bad"}
    [line] = access_lines(caplog, 1)
    # Hasura answers a GraphQL error over HTTP with 200 too; no edge error code.
    assert (line["operation_id"], line["outcome"], line["status"], line["error_code"]) == ("bad", "error", 200, None)
