"""GraphiQL at the edge in a real browser: Debian's Chromium, headless, driven by playwright-core from
``tests/clients/`` (``graphiql-browser.mjs``), against an edge in front of the Hasura double: with a bearer
token over plain http/ws and over https/wss (the edge terminating TLS, as in the demo), and with an API key.

``make install`` installs Chromium (as root, with apt-get, when it is missing) and playwright-core (``npm ci``);
the test skips, saying why, when either is absent. It writes a screenshot of the page with a subscription
running to its own temporary directory; ``docs/images/graphiql.png`` is one such screenshot.
"""

from __future__ import annotations

import io
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from edge.keys.cli import main as keys_main
from edge.ws.devcert import make_certificate
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.edge_database import edge_database
from tests.support.node_clients import run_node
from tests.support.tokens import mint

REFUSED = "Your plan does not allow introspection: the schema explorer is off; queries still run."
QUERY = "query Users { users(limit: 1) { id } }"
SUBSCRIPTION = "subscription Users {\n  users(limit: 2) {\n    id\n    name\n  }\n}"


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.skip("chromium is not installed (make install installs Debian's chromium when run as root)")
    return found


PLANS: dict[str, Any] = {
    "plans": {"default": {}, "explorer": {"graphql": {"introspection": True}}},
    "anonymous_plan": "default",  # introspection off (the default)
    "jwt_plan": "explorer",
}
USER = {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_graphiql_runs_a_query_and_a_subscription_and_says_when_introspection_is_refused(
    start_edge: EdgeFactory, hasura: HasuraDouble, tmp_path: Path, scheme: str
) -> None:
    chromium = _chromium()
    tls: dict[str, Path] = {}
    if scheme == "https":  # the edge terminates TLS, as in the demo: the page on https, subscriptions on wss
        made = make_certificate(["localhost"])
        tls = {"tls_cert_file": tmp_path / "edge.pem", "tls_key_file": tmp_path / "edge-key.pem"}
        tls["tls_cert_file"].write_bytes(made.cert_pem)
        tls["tls_key_file"].write_bytes(made.key_pem)
    edge = start_edge(**tls, graphiql=True, error_statuses="negotiate", unauthorized_role="anonymous", **PLANS)
    outcome = _drive(chromium, hasura, tmp_path, f"{scheme}://localhost:{edge.port}/graphql", token=mint())
    assert ("strict-transport-security" in outcome["page"]["headers"]) == (scheme == "https")
    _assert_the_page_worked(outcome, hasura, "Authorization", USER)
    assert (tmp_path / "graphiql.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graphiql_sends_an_api_key_over_http_and_websocket(
    start_edge: EdgeFactory, hasura: HasuraDouble, tmp_path: Path, postgres_server_url: str
) -> None:
    chromium = _chromium()
    with edge_database(postgres_server_url, "edge_keys_graphiql") as database_url:
        out = io.StringIO()
        created = [
            "create",
            "--owner",
            "graphiql",
            "--plan",
            "explorer",
            "--role",
            "user",
            "--var",
            "x-hasura-user-id=key-1",
        ]
        assert keys_main(created, database_url=database_url, known_plans=PLANS["plans"].keys(), out=out) == 0
        key = re.search(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}", out.getvalue())
        assert key is not None
        edge = start_edge(
            graphiql=True, error_statuses="negotiate", unauthorized_role="anonymous", database_url=database_url, **PLANS
        )
        outcome = _drive(chromium, hasura, tmp_path, f"{edge.url}/v1/graphql", token=key.group(0), kind="api-key")
    _assert_the_page_worked(outcome, hasura, "X-API-Key", {"x-hasura-role": "user", "x-hasura-user-id": "key-1"})


def _drive(chromium: str, hasura: HasuraDouble, tmp_path: Path, page_url: str, **credential: str) -> dict[str, Any]:
    hasura.ws.tick_seconds = 0.2
    return run_node(
        "graphiql-browser.mjs",
        timeout=180,
        pageUrl=page_url,
        ignoreHTTPSErrors=page_url.startswith("https:"),
        chromium=chromium,
        userDataDir=str(tmp_path / f"profile-{uuid.uuid4().hex}"),
        query=QUERY,
        subscription=SUBSCRIPTION,
        screenshot=str(tmp_path / "graphiql.png"),
        timeoutMs=30000,
        **credential,
    )


def _assert_the_page_worked(
    outcome: dict[str, Any], hasura: HasuraDouble, header: str, session: dict[str, str]
) -> None:
    assert outcome.get("error") is None, outcome
    assert outcome["page"]["status"] == 200
    assert outcome["page"]["headers"]["content-security-policy"].startswith("default-src 'none'; script-src 'self';")

    # Anonymous: the plan refuses introspection; the page says so, the explorer has no schema, queries run.
    anonymous = outcome["steps"]["anonymous"]
    assert anonymous["notice"] == REFUSED
    assert anonymous["state"] == "anonymous"
    assert "No GraphQL schema available" in anonymous["explorer"]
    assert "Error fetching schema" not in anonymous["explorer"]
    assert len(anonymous["query"]["data"]["users"]) == 1

    # A token that does not verify: the notice gives the edge's error instead of a schema.
    assert outcome["steps"]["badToken"]["notice"] == (
        "The schema could not be loaded: Could not verify JWT: JWSError CompactDecodeError (invalid-jwt)"
    )

    # With the credential: its plan allows introspection, so the explorer shows Hasura's schema.
    with_credential = outcome["steps"]["token"]
    assert with_credential["noticeHidden"] is True
    assert with_credential["state"] == f"sending {header}"
    assert "query_root" in with_credential["explorer"]
    assert "subscription_root" in with_credential["explorer"]
    assert len(with_credential["query"]["data"]["users"]) == 1

    # The subscription ran over graphql-ws on the page's own origin, with the credential in connection_init.
    users = outcome["steps"]["subscription"]["data"]["users"]
    assert [sorted(user) for user in users] == [["id", "name"], ["id", "name"]]
    assert outcome["steps"]["subscriptionRunning"] is True
    assert [c.session for c in hasura.ws.connections if c.session is not None] == [session]

    # Hasura saw the anonymous query as the unauthorized role and the other as the credential's; the
    # refused introspection never reached it.
    requests = hasura.graphql_requests()
    assert [r.session for r in requests if b"__schema" not in r.body] == [{"x-hasura-role": "anonymous"}, session]
    introspections = [r.session for r in requests if b"__schema" in r.body]
    assert introspections
    assert all(introspection == session for introspection in introspections)

    # Nothing the page needed was blocked, and nothing failed.
    assert outcome["violations"] == []
    assert outcome["pageErrors"] == []
    assert outcome["consoleErrors"] == []
