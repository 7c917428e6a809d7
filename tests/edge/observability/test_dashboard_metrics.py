"""Every metric a Grafana panel queries is exported: scraped from a running edge and a running actions service.

The edge runs as in the compose file's observability profile (``/metrics`` on a listener of its own, no token) in
front of the Hasura double; a few requests make every series exist (a plain query, a warn-only limit hit, a
rejection, a subscription over a WebSocket), then the scrape's sample names are compared with the names the
dashboards' PromQL selects (``tests.support.dashboards``). The actions service's dashboard is checked against
the actions service's own ``/metrics`` the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from actions.app import create_app as create_actions_app
from actions.settings import ActionsSettings
from edge.app import create_app
from tests.edge.conftest import edge_settings, start_edge_app
from tests.hasura_double import HasuraDouble
from tests.support.dashboards import (
    DASHBOARDS,
    PROMETHEUS_SERIES,
    exported_names,
    metric_names,
    queried_metrics,
)
from tests.support.servers import RunningServer, free_loopback_socket, start_server
from tests.support.tokens import hasura_claims, mint

EDGE_DASHBOARD = DASHBOARDS / "hasura-edge.json"
ACTIONS_DASHBOARD = DASHBOARDS / "actions.json"
DEEP = "{ users(limit: 1) { orders { user { id } } } }"  # depth 3
ALIASED = "{ users(limit: 1) { a: id b: id c: id } }"  # 3 aliases


def load(path: Path) -> dict[str, set[str]]:
    return queried_metrics(json.loads(path.read_text(encoding="utf-8")))


def scrape(url: str) -> set[str]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    return exported_names(text_string_to_metric_families(response.text))


@pytest.fixture
def observed_edge(hasura_server: tuple[HasuraDouble, RunningServer]) -> Iterator[tuple[RunningServer, str]]:
    """An edge with /metrics on its own port (as docker-compose.yml runs it); yields it and its metrics URL."""
    double, double_server = hasura_server
    metrics_socket = free_loopback_socket()
    settings = edge_settings(
        double_server.url,
        metrics_port=metrics_socket.getsockname()[1],
        plans={"default": {"graphql": {"max_depth": 2, "max_aliases": 2, "warn_only": ["max_depth"]}}},
    )
    server = start_edge_app(create_app(settings, metrics_socket=metrics_socket), settings)
    double.reset()
    try:
        yield server, f"http://127.0.0.1:{settings.metrics_port}/metrics"
    finally:
        server.stop()
        double.reset()


def drive(edge: RunningServer) -> None:
    """A query, a warn-only hit, a rejection, and a subscription that is open while the caller scrapes."""
    headers = {"Authorization": f"Bearer {mint(hasura_claims('dashboard-user'))}"}
    url = f"{edge.url}/graphql"
    assert httpx.post(url, json={"query": "{ products(limit: 1) { id } }"}, headers=headers).status_code == 200
    assert httpx.post(url, json={"query": DEEP}, headers=headers).status_code == 200  # over max_depth: warn-only
    rejected = httpx.post(url, json={"query": ALIASED}, headers=headers)
    assert rejected.json()["errors"][0]["extensions"]["code"] == "alias-limit-exceeded"


def test_every_metric_the_edge_dashboard_queries_is_exported(observed_edge: tuple[RunningServer, str]) -> None:
    edge, metrics_url = observed_edge
    queried = load(EDGE_DASHBOARD)
    assert {"edge_limit_warn_only_total", "edge_upstream_breaker_state", "edge_subscriptions"} <= set(queried)
    drive(edge)
    token = mint(hasura_claims("dashboard-user"))
    with connect(
        f"ws://127.0.0.1:{edge.port}/graphql",
        subprotocols=["graphql-transport-ws"],
        open_timeout=10,  # type: ignore[list-item]
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"headers": {"Authorization": f"Bearer {token}"}}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": "subscription { products { id } }"}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "next"
        ws.send(json.dumps({"type": "complete", "id": "1"}))
        # Usage is recorded just after each answer is sent, and the stopped subscription when its end is processed.
        deadline = time.monotonic() + 5
        exported = scrape(metrics_url)
        while not {"edge_usage_total", "edge_limit_warn_only_total"} <= exported and time.monotonic() < deadline:
            time.sleep(0.05)
            exported = scrape(metrics_url)
    missing = {name: sorted(panels) for name, panels in queried.items() if name not in exported | PROMETHEUS_SERIES}
    assert not missing, f"panels query metrics the edge does not export: {missing}"
    assert "edge_requests" not in exported, "only sample names count: a counter is selected as ..._total"


def test_every_metric_the_actions_dashboard_queries_is_exported(postgres_server_url: str) -> None:
    queried = load(ACTIONS_DASHBOARD)
    assert queried
    # /healthz and /metrics never touch the database: the URL only has to be valid.
    settings = ActionsSettings(database_url=postgres_server_url, webhook_secret="dashboard-test-secret-0123456789")
    server = start_server(create_actions_app(settings))
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        exported = scrape(f"{server.url}/metrics")
    finally:
        server.stop()
    missing = {name: sorted(panels) for name, panels in queried.items() if name not in exported | PROMETHEUS_SERIES}
    assert not missing, f"panels query metrics the actions service does not export: {missing}"


def test_a_metric_no_one_exports_would_be_reported() -> None:
    """The comparison above can fail: a misspelt name is not among an edge's sample names."""
    exported = exported_names(text_string_to_metric_families("# TYPE edge_requests counter\nedge_requests_total 1\n"))
    assert metric_names("sum(rate(edge_request_total[5m]))") - exported == {"edge_request_total"}
    assert metric_names("sum(rate(edge_requests_total[5m]))") <= exported
