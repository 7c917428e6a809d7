"""Through a running edge: warn-only limit hits counted by limit and plan, and the Hasura target's breaker in /metrics.

A warn-only hit is an operation its plan's limit would have refused, forwarded instead: counted once per limit
it exceeds, and only when the operation is forwarded (a request refused by another limit counts nothing).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import hasura_claims, mint

TOKEN = "scrape-warn-only"


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(hasura_claims(f'u-{uuid.uuid4()}'))}"}


def post(edge: RunningServer, body: Any) -> httpx.Response:
    return httpx.post(f"{edge.url}/graphql", json=body, headers=auth(), timeout=10)


def samples(edge: RunningServer, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` on the edge's /metrics, keyed by its sorted labels."""
    response = httpx.get(f"{edge.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name
    }


def warn_only(edge: RunningServer) -> dict[tuple[str, str], float]:
    """(limit, plan) -> edge_limit_warn_only_total."""
    return {
        (dict(labels)["limit"], dict(labels)["plan"]): value
        for labels, value in samples(edge, "edge_limit_warn_only_total").items()
    }


DEEP = "{ users(limit: 1) { orders { user { id } } } }"  # depth 3
DEEP_AND_ALIASED = "{ users(limit: 1) { a: id b: id orders { user { id } } } }"  # depth 3, 2 aliases
TWO_ROOT_FIELDS = "{ users(limit: 1) { orders { user { id } } } products(limit: 1) { id } }"


def test_warn_only_hits_are_counted_per_limit_and_plan_and_only_when_forwarded(
    start_edge: EdgeFactory, hasura: HasuraDouble, caplog: pytest.LogCaptureFixture
) -> None:
    edge = start_edge(
        metrics_token=TOKEN,
        plans={
            "default": {
                "graphql": {
                    "max_depth": 1,
                    "max_aliases": 1,
                    "max_root_fields": 1,
                    "max_batch_size": 2,
                    "warn_only": ["max_depth", "max_aliases", "max_batch_size"],
                }
            }
        },
    )
    assert warn_only(edge) == {}
    with caplog.at_level(logging.WARNING, logger="edge.analysis"):
        assert post(edge, {"query": DEEP}).status_code == 200
    assert warn_only(edge) == {("max_depth", "default"): 1}
    assert [(r.limit, r.plan) for r in caplog.records if r.getMessage() == "limit_warn_only"] == [  # type: ignore[attr-defined]
        ("max_depth", "default")
    ]

    assert post(edge, {"query": DEEP_AND_ALIASED}).status_code == 200  # over two warn-only limits: one each
    assert warn_only(edge) == {("max_depth", "default"): 2, ("max_aliases", "default"): 1}

    batch = [{"query": DEEP}, {"query": "{ products(limit: 1) { id } }"}, {"query": DEEP}]  # 3 > max_batch_size
    assert post(edge, batch).status_code == 200
    assert warn_only(edge) == {
        ("max_depth", "default"): 4,
        ("max_aliases", "default"): 1,
        ("max_batch_size", "default"): 1,
    }
    assert len(hasura.graphql_requests()) == 3  # every request above was forwarded (the batch as one)

    hasura.reset()
    refused = post(edge, {"query": TWO_ROOT_FIELDS})  # over max_depth (warn-only) and max_root_fields (enforced)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "root-field-limit-exceeded"
    assert hasura.requests == []
    assert warn_only(edge)[("max_depth", "default")] == 4  # refused anyway: the warn-only limit changed nothing


def test_warn_only_hits_carry_the_plan_of_the_caller(start_edge: EdgeFactory, hasura: HasuraDouble) -> None:
    edge = start_edge(
        metrics_token=TOKEN,
        unauthorized_role="anonymous",
        plans={
            "members": {"graphql": {"max_depth": 1, "warn_only": ["max_depth"]}},
            "visitors": {"graphql": {"max_depth": 2, "warn_only": ["max_depth"]}},
        },
        jwt_plan="members",
        anonymous_plan="visitors",
    )
    assert post(edge, {"query": DEEP}).status_code == 200  # members
    anonymous = httpx.post(f"{edge.url}/graphql", json={"query": DEEP}, timeout=10)
    assert anonymous.status_code == 200
    assert warn_only(edge) == {("max_depth", "members"): 1, ("max_depth", "visitors"): 1}


def test_the_hasura_targets_breaker_state_is_exported(start_edge: EdgeFactory, hasura: HasuraDouble) -> None:
    edge = start_edge(metrics_token=TOKEN, upstream_breaker_failure_threshold=2, upstream_breaker_reset_seconds=60)
    (hasura_target,) = {dict(labels)["target"] for labels in samples(edge, "edge_upstream_healthy")}

    def states() -> dict[str, float]:
        return {
            dict(labels)["state"]: value
            for labels, value in samples(edge, "edge_upstream_breaker_state").items()
            if dict(labels)["target"] == hasura_target
        }

    assert states() == {"closed": 1.0, "open": 0.0, "half_open": 0.0}
    hasura.faults.drop = True
    assert [post(edge, {"query": "{ products { id } }"}).status_code for _ in range(2)] == [502, 502]
    assert states() == {"closed": 0.0, "open": 1.0, "half_open": 0.0}
    assert samples(edge, "edge_upstream_breaker_opened_total") == {(("target", hasura_target),): 1.0}
    assert samples(edge, "edge_upstream_healthy") == {(("target", hasura_target),): 1.0}  # one target: not checked
    assert post(edge, {"query": "{ products { id } }"}).status_code == 503
    rejections = samples(edge, "edge_rejections_total")
    assert rejections[(("code", "upstream-unavailable"), ("transport", "http"))] == 2
    assert rejections[(("code", "service-unavailable"), ("transport", "http"))] == 1  # refused by the open circuit


def test_the_target_label_is_the_configured_host_and_port(start_edge: EdgeFactory, hasura_url: str) -> None:
    edge = start_edge(metrics_token=TOKEN)
    assert samples(edge, "edge_upstream_healthy") == {(("target", urlsplit(hasura_url).netloc),): 1.0}
