"""Fault switches (the brief's fault model) observed by a real httpx client over loopback."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.hasura_double import HasuraDouble
from tests.support.servers import serving, start_server

from .conftest import ADMIN, gql, http_client

QUERY = "{ users(limit: 1) { id } }"


async def test_delay_postpones_the_answer(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    double.faults.delay = 0.3
    started = time.monotonic()
    response = await gql(client, QUERY)
    assert time.monotonic() - started >= 0.25
    assert response.status_code == 200
    assert double.last().fault == "delay"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_status_answers_plain_text(client: httpx.AsyncClient, double: HasuraDouble, status: int) -> None:
    double.faults.status = status
    response = await gql(client, QUERY)
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
    assert "x-request-id" not in response.headers


async def test_status_body_is_configurable(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    double.faults.status = 500
    double.faults.status_body = b"boom"
    assert (await gql(client, QUERY)).text == "boom"


async def test_faults_apply_only_to_graphql_by_default(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    double.faults.status = 500
    double.faults.drop = True
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/v1/version")).status_code == 200


async def test_times_limits_the_fault_to_the_next_requests(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    double.faults.status = 503
    double.faults.times = 2
    statuses = [(await gql(client, QUERY)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert double.faults.status is None


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_drop_closes_the_connection_without_a_response(http: str) -> None:
    double = HasuraDouble()
    double.faults.drop = True
    double.faults.times = 1
    with serving(double.app, http=http) as server:
        async with http_client(server.url, timeout=5.0) as client:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await gql(client, QUERY)
            after = await gql(client, QUERY)
    assert after.status_code == 200
    dropped = double.requests[0]
    assert (dropped.fault, dropped.status) == ("drop", None)


async def test_hang_never_answers_until_the_client_gives_up(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    double.faults.hang = True
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/v1/graphql", json={"query": QUERY}, headers=ADMIN, timeout=0.3)
    record = double.last()
    assert (record.fault, record.status) == ("hang", None)


async def test_reset_releases_a_hung_request_which_is_then_answered(
    client: httpx.AsyncClient, double: HasuraDouble
) -> None:
    double.faults.hang = True
    pending = asyncio.create_task(gql(client, QUERY))
    await asyncio.to_thread(double.wait_for_requests, 1)
    await asyncio.sleep(0.05)
    assert not pending.done()
    double.reset()
    response = await asyncio.wait_for(pending, 2.0)
    assert response.status_code == 200
    assert double.faults.hang is False


async def test_hang_does_not_block_server_shutdown() -> None:
    double = HasuraDouble()
    double.faults.hang = True
    double.faults.hang_limit = 3600.0  # the safety net stays out of reach: only the shutdown can end the hang
    running = start_server(double.app)
    try:
        async with http_client(running.url, timeout=10.0) as client:
            pending = asyncio.create_task(gql(client, QUERY))
            await asyncio.to_thread(double.wait_for_requests, 1)
            await asyncio.to_thread(running.stop)  # waits for the server's thread, 10 s at most
            assert not running.thread.is_alive()
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await pending
    finally:
        running.stop()


async def test_hang_limit_drops_the_connection(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    double.faults.hang = True
    double.faults.hang_limit = 0.2
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await gql(client, QUERY)


async def test_include_health_extends_delay_and_drop_to_health(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    double.faults.include_health = True
    double.faults.status = 500
    double.faults.delay = 0.2
    started = time.monotonic()
    response = await client.get("/healthz")
    assert time.monotonic() - started >= 0.15
    assert response.status_code == 200, "status faults never apply to health"
    double.faults.drop = True
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.get("/hasura/healthz")
