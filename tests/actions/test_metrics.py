"""GET /metrics on the actions service: requests by route, method and status, with bounded labels."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.actions.conftest import EVENT_HEADERS


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests(route: str, method: str, status: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("actions_requests_total", (("method", method), ("route", route), ("status", status)))


async def test_every_answer_is_counted_by_route_method_and_status(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.post("/events/order_created", json={})).status_code == 401  # the secret check answered
    assert (await client.post("/events/order_created", content=b"{", headers=EVENT_HEADERS)).status_code == 400
    for _ in range(5):
        assert (await client.get(f"/scan/{uuid.uuid4().hex}")).status_code == 404
    series = await scrape(client)
    assert series[requests("/healthz", "GET", "200")] == 1
    assert series[requests("/readyz", "GET", "200")] == 1
    assert series[requests("/events/order_created", "POST", "401")] == 1
    assert series[requests("/events/order_created", "POST", "400")] == 1
    assert series[requests("other", "GET", "404")] == 5  # random paths share one series
    assert len([key for key in series if key[0] == "actions_requests_total"]) == 5
    count = ("actions_request_duration_seconds_count", (("route", "/healthz"),))
    assert series[count] == 1
    assert series[("actions_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "other")))] == 5
    # The previous scrape is counted too, once it has been answered.
    assert (await scrape(client))[requests("/metrics", "GET", "200")] == 1


async def test_unknown_methods_are_other_and_head_gets_no_body(client: httpx.AsyncClient) -> None:
    assert (await client.request("BREW", "/healthz")).status_code == 405
    head = await client.head("/metrics")
    assert head.status_code == 200 and head.content == b""
    series = await scrape(client)
    assert series[requests("/healthz", "other", "405")] == 1
    assert series[requests("/metrics", "HEAD", "200")] == 1
