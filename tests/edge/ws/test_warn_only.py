"""Warn-only limits over a WebSocket: the operation is forwarded, logged and counted, as over HTTP."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.plans import GraphQLLimits, Plan
from tests.edge.ws.conftest import TRANSPORT, WssEdge, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble
from tests.support.tokens import hasura_claims

DEEP = "subscription { users(limit: 1) { orders { user { id } } } }"  # depth 3
DEEP_AND_ALIASED = "subscription { users(limit: 1) { a: id b: id orders { user { id } } } }"  # depth 3, 2 aliases
WIDE = "subscription { users(limit: 1) { orders { user { id } } } products(limit: 1) { id } }"  # 2 root fields


async def warn_only(edge: WssEdge) -> dict[tuple[str, str], float]:
    async with httpx.AsyncClient(verify=edge.ssl()) as http:
        text = (await http.get(f"{edge.https_url}/metrics", headers={"Authorization": "Bearer scrape"})).text
    return {
        (sample.labels["limit"], sample.labels["plan"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "edge_limit_warn_only_total"
    }


async def test_a_subscription_over_a_warn_only_limit_is_forwarded_logged_and_counted(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, caplog: pytest.LogCaptureFixture
) -> None:
    limits = GraphQLLimits(
        max_depth=1, max_aliases=1, max_root_fields=1, warn_only=frozenset({"max_depth", "max_aliases"})
    )
    edge = start_wss_edge(
        metrics_token="scrape", plans={"shadow": Plan(graphql=limits)}, jwt_plan="shadow", anonymous_plan="shadow"
    )
    caplog.set_level(logging.WARNING, logger="edge.ws")
    async with open_client(edge, TRANSPORT) as client:
        assert await client.init(bearer(claims=hasura_claims("ws-warn"))) == {"type": "connection_ack"}
        await client.subscribe("deep", DEEP)
        assert (await client.receive())["type"] == "next"  # forwarded to Hasura
        assert await warn_only(edge) == {("max_depth", "shadow"): 1}
        await client.subscribe("aliased", DEEP_AND_ALIASED)
        assert (await client.receive())["id"] == "aliased"
        assert await warn_only(edge) == {("max_depth", "shadow"): 2, ("max_aliases", "shadow"): 1}
        await client.subscribe("wide", WIDE)  # also over max_root_fields, which is enforced
        refused = await client.receive()
        assert (refused["id"], refused["payload"][0]["extensions"]["code"]) == ("wide", "root-field-limit-exceeded")
    assert await warn_only(edge) == {("max_depth", "shadow"): 2, ("max_aliases", "shadow"): 1}
    logged = [
        (record.operation_id, record.limit, record.plan)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage() == "limit_warn_only"
    ]
    assert logged == [
        ("deep", "max_depth", "shadow"),
        ("aliased", "max_depth", "shadow"),
        ("aliased", "max_aliases", "shadow"),
    ]
