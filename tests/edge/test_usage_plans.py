"""Usage plans through the real edge: rate/burst, quotas, batches, X-Forwarded-For, shared Redis."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.edge.conftest import EdgeFactory
from tests.edge.limits.redis_process import RedisProcess
from tests.hasura_double import HasuraDouble
from tests.support.tokens import hasura_claims, mint

QUERY = {"query": "{ products(limit: 1) { id } }"}


def plans(**free: Any) -> dict[str, Any]:
    return {
        "plans": {"free": free, "open": {}},
        "jwt_plan": "free",
        "anonymous_plan": "free",
    }


def user_token() -> str:
    return mint(hasura_claims(f"user-{uuid.uuid4()}"))


def post(url: str, token: str | None = None, body: Any = QUERY, **headers: str) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=10)


def test_burst_then_429_with_retry_after_and_ratelimit_fields(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(**plans(rate={"requests_per_second": 0.5, "burst": 3}))
    token = user_token()
    allowed = [post(edge.url, token) for _ in range(3)]
    assert [response.status_code for response in allowed] == [200, 200, 200]
    assert [response.headers["ratelimit-remaining"] for response in allowed] == ["2", "1", "0"]
    assert allowed[0].headers["ratelimit-limit"] == "3"
    refused = post(edge.url, token)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "rate-limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    assert len(hasura.graphql_requests()) == 3
    # Another user has a bucket of its own.
    assert post(edge.url, user_token()).status_code == 200


def test_each_operation_of_a_batch_counts(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(**plans(rate={"requests_per_second": 0.1, "burst": 4}))
    token = user_token()
    batch = [QUERY, QUERY, QUERY]
    assert post(edge.url, token, batch).status_code == 200
    refused = post(edge.url, token, [QUERY, QUERY])
    assert refused.status_code == 429
    assert post(edge.url, token, QUERY).status_code == 200
    assert len(hasura.graphql_requests()) == 2


def test_quota_refuses_with_its_own_code(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(**plans(quota={"limit": 2, "period": "DAY"}))
    token = user_token()
    assert [post(edge.url, token).status_code for _ in range(2)] == [200, 200]
    refused = post(edge.url, token)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "quota-exceeded"
    assert int(refused.headers["retry-after"]) > 0


def test_rotating_x_forwarded_for_from_an_untrusted_client_stays_in_one_bucket(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(unauthorized_role="anonymous", **plans(rate={"requests_per_second": 0.1, "burst": 2}))
    statuses = [post(edge.url, None, **{"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(6)]
    assert statuses == [200, 200, 429, 429, 429, 429]


def test_x_forwarded_for_from_a_trusted_proxy_separates_clients(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(
        unauthorized_role="anonymous",
        trusted_proxies="127.0.0.0/8",
        **plans(rate={"requests_per_second": 0.1, "burst": 1}),
    )
    first = [post(edge.url, None, **{"X-Forwarded-For": "198.51.100.7"}).status_code for _ in range(2)]
    other = post(edge.url, None, **{"X-Forwarded-For": "198.51.100.8"}).status_code
    assert first == [200, 429]
    assert other == 200


def test_plan_roles_restrict_which_roles_may_use_the_plan(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(**plans(roles=["user"]))
    token = mint(hasura_claims("u-1", allowed_roles=["user", "editor"]))
    assert post(edge.url, token).status_code == 200
    refused = post(edge.url, token, **{"x-hasura-role": "editor"})
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "role-not-in-plan"


def test_unknown_plan_names_fail_at_start_up(start_edge: EdgeFactory):
    with pytest.raises(ValueError, match="unknown plan 'gold'"):
        start_edge(plans={"free": {}}, jwt_plan="gold", anonymous_plan="free")


def test_two_edges_sharing_redis_enforce_one_combined_limit(
    start_edge: EdgeFactory, hasura: HasuraDouble, topology_redis_url: str
):  # one server, Sentinel and Cluster in turn
    config = plans(rate={"requests_per_second": 0.05, "burst": 4})
    first = start_edge(redis_url=topology_redis_url, **config)
    second = start_edge(redis_url=topology_redis_url, **config)
    token = user_token()
    statuses = [post(edge.url, token).status_code for edge in (first, second) * 4]
    assert statuses.count(200) == 4
    assert statuses.count(429) == 4


@pytest.mark.parametrize(("mode", "expected"), [("open", 200), ("closed", 503)])
def test_redis_going_away_fails_open_or_closed_and_recovers(
    start_edge: EdgeFactory, hasura: HasuraDouble, mode: str, expected: int
):
    redis = RedisProcess()
    redis.start()
    try:
        edge = start_edge(
            redis_url=redis.url, limiter_failure_mode=mode, **plans(rate={"requests_per_second": 0.05, "burst": 2})
        )
        token = user_token()
        assert post(edge.url, token).status_code == 200
        redis.kill()
        degraded = post(edge.url, token)
        assert degraded.status_code == expected
        if expected == 503:
            assert degraded.json()["errors"][0]["extensions"]["code"] == "limiter-unavailable"
        redis.start()  # same port, empty data: the limiter reconnects without a restart
        recovered = [post(edge.url, token).status_code for _ in range(3)]
        assert recovered == [200, 200, 429]
    finally:
        redis.close()
