"""Persisted queries, the response cache, circuit breaking, metrics, the access log and usage metering,
each through the real edge against the Hasura double."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer, free_loopback_socket
from tests.support.tokens import hasura_claims, mint

ROOT = Path(__file__).resolve().parents[2]


def auth(user: str = "u-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(hasura_claims(user))}"}


def post(edge: RunningServer, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{edge.url}/graphql", json=body, headers=headers if headers is not None else auth(), timeout=10)


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


# --- Automatic persisted queries and safelists ---------------------------------------------------------


def test_automatic_persisted_queries_follow_apollos_protocol(edge: RunningServer, hasura: HasuraDouble):
    query = "query Apq { products(limit: 2) { id } }"
    extension = {"persistedQuery": {"version": 1, "sha256Hash": sha(query)}}
    miss = post(edge, {"extensions": extension})
    assert miss.status_code == 200
    assert miss.json()["errors"][0] == {
        "message": "PersistedQueryNotFound",
        "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
    }
    assert hasura.requests == []
    registered = post(edge, {"query": query, "extensions": extension})
    assert len(registered.json()["data"]["products"]) == 2
    hit = post(edge, {"extensions": extension})
    assert len(hit.json()["data"]["products"]) == 2
    # Hasura CE refuses the extension: it gets the full query and never the extension.
    assert [record.json() for record in hasura.graphql_requests()] == [{"query": query}, {"query": query}]
    wrong = post(edge, {"query": "{ users { id } }", "extensions": extension})
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"


def test_safelisted_plans_run_only_manifest_operations(start_edge: EdgeFactory, hasura: HasuraDouble, tmp_path: Path):
    manifest = tmp_path / "manifest.json"
    build = subprocess.run(
        [sys.executable, "-m", "edge", "manifest", "build", "--from-query-collections",
         str(ROOT / "hasura/metadata/query_collections.yaml"), "-o", str(manifest)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    operations = json.loads(manifest.read_text())["operations"]
    edge = start_edge(
        persisted_manifest_file=str(manifest),
        plans={"default": {"graphql": {"safelist": True}}},
    )
    listed = operations[0]
    assert post(edge, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": listed["id"]}}}).status_code == 200
    assert post(edge, {"query": listed["body"]}).status_code == 200
    refused = post(edge, {"query": "{ users { id email } }"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "operation-not-safelisted"
    assert len(hasura.graphql_requests()) == 2


# --- Response cache --------------------------------------------------------------------------------------


def test_cached_directive_is_served_from_the_edge_and_stripped_before_hasura(edge: RunningServer, hasura: HasuraDouble):
    query = "query Cheap @cached(ttl: 120) { products(limit: 1) { id } }"
    first = post(edge, {"query": query})
    second = post(edge, {"query": query})
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.json() == second.json()
    assert second.headers["cache-control"].startswith("private, max-age=")
    assert int(second.headers["cache-control"].rsplit("=", 1)[1]) <= 120
    assert first.headers["x-hasura-query-cache-key"] == second.headers["x-hasura-query-cache-key"]
    [record] = hasura.graphql_requests()
    assert "@cached" not in record.json()["query"]


def test_cache_never_shares_answers_between_identities_or_caches_mutations(edge: RunningServer, hasura: HasuraDouble):
    query = {"query": "query Mine @cached { orders(limit: 1) { id } }"}
    assert post(edge, query, auth("alice")).headers["x-cache"] == "MISS"
    assert post(edge, query, auth("bob")).headers["x-cache"] == "MISS"
    assert post(edge, query, auth("alice")).headers["x-cache"] == "HIT"
    mutation = {"query": 'mutation @cached { insert_orders_one(object: {status: "pending"}) { id } }'}
    post(edge, mutation)
    post(edge, mutation)
    assert len(hasura.graphql_requests()) == 4


def test_concurrent_misses_for_one_key_make_a_single_upstream_call(edge: RunningServer, hasura: HasuraDouble):
    hasura.faults.delay = 0.3
    query = {"query": f"query Flight{uuid.uuid4().hex[:8]} @cached {{ products(limit: 3) {{ id }} }}"}
    headers = auth("same-user")
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: post(edge, query, headers), range(10)))
    assert {response.status_code for response in responses} == {200}
    assert len({response.content for response in responses}) == 1
    assert len(hasura.graphql_requests()) == 1


def test_admin_clears_cache_by_operation(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(admin_secret="cache-admin")
    query = {"query": "query Clearable @cached { warehouses(limit: 1) { id } }"}
    post(edge, query)
    assert post(edge, query).headers["x-cache"] == "HIT"
    cleared = httpx.post(
        f"{edge.url}/admin/cache/clear",
        params={"operation": "Clearable"},
        headers={"X-Edge-Admin-Secret": "cache-admin"},
    )
    assert cleared.json() == {"cleared": 1}
    assert post(edge, query).headers["x-cache"] == "MISS"


# --- Resilience ------------------------------------------------------------------------------------------


def test_circuit_opens_after_repeated_failures_and_answers_503_with_retry_after(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(upstream_breaker_failure_threshold=3, upstream_breaker_reset_seconds=30)
    hasura.faults.drop = True
    assert [post(edge, {"query": "{ products { id } }"}).status_code for _ in range(3)] == [502, 502, 502]
    hasura.reset()
    refused = post(edge, {"query": "{ products { id } }"})
    assert refused.status_code == 503
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert hasura.requests == []  # the open circuit protects Hasura


def test_queries_are_retried_on_another_hasura_but_mutations_never(
    start_edge: EdgeFactory, hasura: HasuraDouble, hasura_url: str
):
    dead = free_loopback_socket()  # bound, never listening: connections are refused
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    try:
        edge = start_edge(hasura_urls=f"{dead_url}|1, {hasura_url}|1", upstream_breaker_failure_threshold=100)
        statuses = [post(edge, {"query": "{ products(limit: 1) { id } }"}).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 200]
        hasura.reset()
        mutation = {"query": 'mutation { insert_orders_one(object: {status: "pending"}) { id } }'}
        outcomes = [post(edge, mutation).status_code for _ in range(4)]
        assert sorted(outcomes) == [200, 200, 502, 502]  # the dead instance's turns fail, never re-sent
        assert len(hasura.graphql_requests()) == 2
    finally:
        dead.close()


# --- Metrics, access log, usage ---------------------------------------------------------------------------


def test_metrics_on_the_main_port_require_the_token(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(metrics_token="scrape-me")
    post(edge, {"query": "{ products(limit: 1) { id } }"})
    post(edge, {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"})
    assert httpx.get(f"{edge.url}/metrics").status_code == 401
    scraped = httpx.get(f"{edge.url}/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert scraped.status_code == 200
    text = scraped.text
    assert (
        'edge_requests_total{operation_type="query",plan="default",role="user",status="200",transport="http"} 1.0'
        in text
    )
    assert 'edge_rejections_total{code="alias-limit-exceeded",transport="http"} 1.0' in text
    assert "edge_request_duration_seconds_bucket" in text


def test_metrics_are_absent_on_the_main_port_without_a_token(edge: RunningServer):
    assert httpx.get(f"{edge.url}/metrics").status_code == 404


def test_one_access_log_line_per_operation_without_secrets(
    edge: RunningServer, hasura: HasuraDouble, caplog: pytest.LogCaptureFixture
):
    token_headers = auth("logged-user")
    batch = [
        {"query": "query One { products(limit: 1) { id } }", "variables": {"secret": "s3cr3t-variable"}},
        {"query": "query Two { warehouses(limit: 1) { id } }"},
    ]
    with caplog.at_level(logging.INFO, logger="edge.access"):
        assert post(edge, batch, token_headers).status_code == 200
        # The line is written just after the answer is sent (the client never waits for logging).
        deadline = time.monotonic() + 5
        while len([r for r in caplog.records if r.name == "edge.access"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = [record for record in caplog.records if record.name == "edge.access"]
    assert [line.operation_name for line in lines] == ["One", "Two"]  # type: ignore[attr-defined]
    assert lines[0].role == "user" and lines[0].status == 200  # type: ignore[attr-defined]
    dumped = " ".join(str(vars(line)) for line in lines)
    assert "s3cr3t-variable" not in dumped
    assert token_headers["Authorization"].split()[1] not in dumped


def test_usage_report_per_user_behind_its_own_secret(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(usage_admin_secret="billing")
    for _ in range(3):
        post(edge, {"query": "{ products(limit: 2) { id } }"}, auth("metered-user"))
    assert httpx.get(f"{edge.url}/admin/usage").status_code == 404
    # Usage is recorded just after each answer is sent: poll briefly for the last one.
    deadline = time.monotonic() + 5
    while True:
        report = httpx.get(
            f"{edge.url}/admin/usage", params={"kind": "user"}, headers={"X-Edge-Usage-Secret": "billing"}
        )
        assert report.status_code == 200
        rows = [row for row in report.json()["subjects"] if row["subject"] == "metered-user"]
        if (rows and rows[0]["requests"] == 3) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert rows[0]["requests"] == 3
