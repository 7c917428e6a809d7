"""How many workers ``EDGE_WORKERS`` means, and the sum of several workers' metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from edge.observability.metrics import EdgeMetrics
from edge.observability.metrics_peers import sum_expositions
from edge.settings import EdgeSettings
from edge.workers.count import usable_cpus, worker_count
from tests.support.tokens import JWT_SECRET_JSON


def settings(**values: object) -> EdgeSettings:
    return EdgeSettings(
        hasura_url="http://hasura:8080", hasura_admin_secret="a-real-secret", jwt_secret=JWT_SECRET_JSON, **values
    )


def test_auto_is_one_worker_without_redis_and_one_per_usable_cpu_with_it(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert worker_count(settings(), tmp_path).count == 1
    with_redis = worker_count(settings(redis_url="redis://127.0.0.1:6379/0"), tmp_path)
    assert with_redis.count == usable_cpus(tmp_path) and with_redis.shares_state


def test_an_explicit_number_is_kept_with_or_without_redis():
    count = worker_count(settings(workers="3"))
    assert (count.count, count.shares_state) == (3, False)


@pytest.mark.parametrize(("cpu_max", "expected"), [("50000 100000", 1), ("100000 100000", 1), ("max 100000", None)])
def test_a_cgroup_v2_quota_caps_the_cpus(tmp_path: Path, cpu_max: str, expected: int | None):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    assert usable_cpus(tmp_path) == (expected or usable_cpus(tmp_path / "absent"))


def test_a_cgroup_v1_quota_caps_the_cpus(tmp_path: Path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cpus(tmp_path) == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_edge_workers_must_be_a_positive_number_or_auto(value: str):
    with pytest.raises(ValidationError) as raised:
        settings(workers=value)
    (error,) = raised.value.errors()
    assert error["msg"] == "Value error, must be a whole number of at least 1, or auto"


def test_summed_expositions_add_counters_histograms_and_gauges_and_keep_the_earliest_created():
    first, second = EdgeMetrics(plans=["free"]), EdgeMetrics(plans=["free"])
    first.observe_request("query", 200, "free", "user", 0.01)
    second.observe_request("query", 200, "free", "user", 0.2)
    second.observe_request("mutation", 200, "free", "user", 0.2)
    first.websocket_connections.set_function(lambda: 2)
    second.websocket_connections.set_function(lambda: 3)
    summed = sum_expositions([first.render()[0], second.render()[0]]).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(summed)
        for sample in family.samples
    }
    query = (("operation_type", "query"), ("plan", "free"), ("role", "user"), ("status", "200"), ("transport", "http"))
    assert samples[("edge_requests_total", query)] == 2
    assert samples[("edge_request_duration_seconds_count", query[:2] + query[4:])] == 2
    assert samples[("edge_websocket_connections", ())] == 5
    assert samples[("edge_requests_created", query)] == first.registry.get_sample_value(
        "edge_requests_created", dict(query)
    )


def test_one_exposition_summed_is_itself():
    metrics = EdgeMetrics()
    metrics.observe_request("query", 200, "", "", 0.01)
    body = metrics.render()[0]
    assert sum_expositions([body]) == body
