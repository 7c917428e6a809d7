"""20 concurrent processPayment calls with one key, against the service under uvicorn on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from actions.app import create_app
from actions.providers import SimulatedProvider
from tests.actions.conftest import ACTION_HEADERS, Db, make_settings
from tests.actions.payloads import ALICE_ORDER, payment_request
from tests.support.servers import RunningServer, start_server

pytestmark = pytest.mark.postgres

CALLS = 20


@pytest.fixture
def provider() -> SimulatedProvider:
    # Slow enough that the other 19 requests arrive while the first still holds the claim.
    return SimulatedProvider(latency_seconds=0.3)


@pytest.fixture
def server(database_url: str, provider: SimulatedProvider) -> Iterator[RunningServer]:
    running = start_server(create_app(make_settings(database_url), provider=provider))
    try:
        yield running
    finally:
        running.stop()


async def test_twenty_concurrent_calls_with_one_key_charge_exactly_once(
    server: RunningServer, provider: SimulatedProvider, db: Db
) -> None:
    body = payment_request(key="concurrent-key")
    limits = httpx.Limits(max_connections=CALLS)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        gate = asyncio.Event()

        async def call() -> httpx.Response:
            await gate.wait()
            return await client.post("/actions/processPayment", json=body, headers=ACTION_HEADERS)

        tasks = [asyncio.create_task(call()) for _ in range(CALLS)]
        gate.set()
        responses = await asyncio.gather(*tasks)
        after = await client.post("/actions/processPayment", json=body, headers=ACTION_HEADERS)

    fresh = [r for r in responses if r.status_code == 200 and not r.json()["idempotentReplay"]]
    replays = [r for r in responses if r.status_code == 200 and r.json()["idempotentReplay"]]
    in_progress = [r for r in responses if r.status_code == 409]
    assert len(fresh) == 1, [(r.status_code, r.text) for r in responses]
    assert len(fresh) + len(replays) + len(in_progress) == CALLS
    assert in_progress, "the provider latency should have made some calls overlap the claim"
    assert all(r.json()["extensions"]["code"] == "IDEMPOTENCY_IN_PROGRESS" for r in in_progress)
    winner = fresh[0].json()
    assert all(r.json() == {**winner, "idempotentReplay": True} for r in replays)
    assert after.json() == {**winner, "idempotentReplay": True}

    assert len(provider.calls) == 1
    assert db.rows("SELECT id::text, status FROM payments WHERE order_id = %s", ALICE_ORDER) == [
        (winner["paymentId"], "approved")
    ]
    assert db.rows("SELECT state FROM payment_idempotency") == [("completed",)]


async def test_concurrent_calls_with_different_keys_for_one_order_charge_once(
    server: RunningServer, provider: SimulatedProvider, db: Db
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post("/actions/processPayment", json=payment_request(key=f"k-{i}"), headers=ACTION_HEADERS)
                for i in range(5)
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409, 409], [r.text for r in responses]
    assert {r.json()["extensions"]["code"] for r in responses if r.status_code == 409} == {"ORDER_NOT_PAYABLE"}
    assert len(provider.calls) == 1
    assert db.count("payments WHERE order_id = 'cccccccc-0000-4000-8000-000000000001'") == 1
    # The losers' claims were rolled back or released: their keys can be used again.
    assert db.count("payment_idempotency") == 1
