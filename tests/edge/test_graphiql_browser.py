"""GraphiQL at the edge in a real browser: Debian's Chromium, headless, driven by playwright-core from
``tests/clients/`` (``graphiql-browser.mjs``), against an edge in front of the Hasura double: over plain
http/ws, and over https/wss with the edge terminating TLS as in the demo.

``make install`` installs Chromium (as root, with apt-get, when it is missing) and playwright-core (``npm ci``);
the test skips, saying why, when either is absent. It writes a screenshot of the page with a subscription
running to its own temporary directory; ``docs/images/graphiql.png`` is one such screenshot.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from edge.ws.devcert import make_certificate
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
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


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_graphiql_runs_a_query_and_a_subscription_and_says_when_introspection_is_refused(
    start_edge: EdgeFactory, hasura: HasuraDouble, tmp_path: Path, scheme: str
) -> None:
    chromium = _chromium()
    hasura.ws.tick_seconds = 0.2
    tls: dict[str, Path] = {}
    if scheme == "https":  # the edge terminates TLS, as in the demo: the page on https, subscriptions on wss
        made = make_certificate(["localhost"])
        tls = {"tls_cert_file": tmp_path / "edge.pem", "tls_key_file": tmp_path / "edge-key.pem"}
        tls["tls_cert_file"].write_bytes(made.cert_pem)
        tls["tls_key_file"].write_bytes(made.key_pem)
    edge = start_edge(
        **tls,
        graphiql=True,
        error_statuses="negotiate",
        unauthorized_role="anonymous",
        plans={"default": {}, "explorer": {"graphql": {"introspection": True}}},
        anonymous_plan="default",  # introspection off (the default)
        jwt_plan="explorer",
    )
    screenshot = tmp_path / "graphiql.png"
    outcome = run_node(
        "graphiql-browser.mjs",
        timeout=180,
        pageUrl=f"{scheme}://localhost:{edge.port}/graphql",
        ignoreHTTPSErrors=scheme == "https",
        chromium=chromium,
        userDataDir=str(tmp_path / f"profile-{uuid.uuid4().hex}"),
        token=mint(),
        query=QUERY,
        subscription=SUBSCRIPTION,
        screenshot=str(screenshot),
        timeoutMs=30000,
    )
    assert outcome.get("error") is None, outcome
    assert outcome["page"]["status"] == 200
    headers = outcome["page"]["headers"]
    assert headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")
    assert ("strict-transport-security" in headers) == (scheme == "https")

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

    # With the token: its plan allows introspection, so the explorer shows Hasura's schema.
    with_token = outcome["steps"]["token"]
    assert with_token["noticeHidden"] is True
    assert with_token["state"] == "sending Authorization"
    assert "query_root" in with_token["explorer"]
    assert "subscription_root" in with_token["explorer"]
    assert len(with_token["query"]["data"]["users"]) == 1

    # The subscription ran over graphql-ws on the page's own origin, with the token in connection_init.
    users = outcome["steps"]["subscription"]["data"]["users"]
    assert [sorted(user) for user in users] == [["id", "name"], ["id", "name"]]
    assert outcome["steps"]["subscriptionRunning"] is True
    connections = [c for c in hasura.ws.connections if c.session is not None]
    assert [c.session for c in connections] == [{"x-hasura-role": "user", "x-hasura-user-id": "user-1"}]

    # Hasura saw the anonymous query as the unauthorized role and the other as the token's user; the
    # refused introspection never reached it.
    user = {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}
    requests = hasura.graphql_requests()
    assert [r.session for r in requests if b"__schema" not in r.body] == [{"x-hasura-role": "anonymous"}, user]
    introspections = [r.session for r in requests if b"__schema" in r.body]
    assert introspections
    assert all(session == user for session in introspections)

    # Nothing the page needed was blocked, and nothing failed.
    assert outcome["violations"] == []
    assert outcome["pageErrors"] == []
    assert outcome["consoleErrors"] == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
