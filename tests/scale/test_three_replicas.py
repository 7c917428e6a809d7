"""Three ``python -m edge`` processes on one Redis Cluster and one Postgres, in front of the Hasura double:
what replicas share, seen from clients spread over all three.

- one rate limit (an API key's burst, whichever edge each request reaches);
- one subscription cap per user (``max_subscriptions``), freed by a ``complete`` or a closed socket;
- one key revocation (``python -m edge keys revoke``), refused by every edge once its key cache ran out;
- one edge SIGKILLed under load: the clients retry elsewhere only what never got a response, and only
  requests in flight on that edge at the kill ever need to.

The edges start once for the module; the kill comes last (it leaves two edges). Every wait has a safety
net for a broken edge (``SAFETY_NET``), never a measure of speed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.edge.conftest import DOUBLE_ADMIN_SECRET
from tests.edge.workers.edge_process import ROOT, SAFETY_NET, EdgeProcess, free_port, serving_env
from tests.hasura_double import HasuraDouble
from tests.support.edge_database import edge_database
from tests.support.servers import RunningServer, start_server
from tests.support.tokens import hasura_claims, mint

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

BURST = 10
PLANS = {
    # An API key's plan: a burst and (practically) no refill during the test.
    "metered": {"rate": {"requests_per_second": 0.001, "burst": BURST}},
    # Verified JWT callers: two concurrent subscriptions per user across the replicas.
    "streams": {"max_subscriptions": 2},
    "unlimited": {},
}
QUERY = {"query": "{ products(limit: 1) { id } }"}
SUBSCRIPTION = "subscription { users(limit: 1) { id } }"
KEY = re.compile(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")
TRANSPORT = "graphql-transport-ws"


@dataclass
class Replicas:
    edges: list[EdgeProcess]
    ports: list[int]
    env: dict[str, str]
    """The configuration the edges share (``python -m edge keys`` runs with it too)."""
    double: HasuraDouble

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}/graphql"

    def ws_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.ports[index]}/graphql"


@pytest.fixture(scope="module")
def hasura_double() -> Iterator[tuple[HasuraDouble, RunningServer]]:
    double = HasuraDouble(admin_secret=DOUBLE_ADMIN_SECRET)
    server = start_server(double.app)
    yield double, server
    double.reset()
    server.stop()


@pytest.fixture(scope="module")
def database_url(postgres_server_url: str) -> Iterator[str]:
    with edge_database(postgres_server_url, "edge_scale") as url:
        yield url


@pytest.fixture(scope="module")
def replicas(
    hasura_double: tuple[HasuraDouble, RunningServer], redis_cluster_url: str, database_url: str
) -> Iterator[Replicas]:
    double, server = hasura_double
    shared = {
        "EDGE_REDIS_URL": redis_cluster_url,
        "EDGE_DATABASE_URL": database_url,
        "EDGE_API_KEY_CACHE_SECONDS": "1",
        "EDGE_WORKERS": "1",
        "EDGE_PLANS": json.dumps(PLANS),
        "EDGE_JWT_PLAN": "streams",
        "EDGE_ANONYMOUS_PLAN": "streams",
        "EDGE_ERROR_STATUSES": "edge",
    }
    ports = [free_port() for _ in range(3)]
    edges: list[EdgeProcess] = []
    try:
        for port in ports:
            edges.append(EdgeProcess(serving_env(server.url, port, **shared)))
        for edge in edges:
            edge.wait_for_event("edge_listening")
        yield Replicas(edges, ports, serving_env(server.url, ports[0], **shared), double)
    finally:
        for edge in edges:
            edge.stop()


def edge_cli(replicas: Replicas, *args: str) -> str:
    """``python -m edge <args>`` with the edges' configuration; its standard output."""
    run = subprocess.run(
        [sys.executable, "-m", "edge", *args], cwd=ROOT, env=replicas.env,
        capture_output=True, text=True, timeout=SAFETY_NET,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


def create_key(replicas: Replicas, plan: str) -> str:
    found = KEY.search(edge_cli(replicas, "keys", "create", "--owner", f"scale-{plan}", "--plan", plan))
    assert found is not None
    return found.group(0)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


# 1. One rate limit ----------------------------------------------------------------------------------------


def test_one_burst_is_shared_by_the_three_edges(replicas: Replicas) -> None:
    key = create_key(replicas, "metered")
    statuses: list[int] = []
    codes: list[str] = []
    with httpx.Client(timeout=SAFETY_NET) as client:
        for index in itertools.islice(itertools.cycle(range(3)), 3 * BURST):
            response = client.post(replicas.url(index), json=QUERY, headers={"X-API-Key": key})
            statuses.append(response.status_code)
            if response.status_code != 200:
                codes.append(error_code(response))
    assert statuses.count(200) == BURST
    assert statuses.count(429) == 2 * BURST
    assert set(codes) == {"rate-limited"}


# 2. One subscription cap ----------------------------------------------------------------------------------


class Socket:
    """A graphql-transport-ws client on one edge, authenticated as ``user``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count()

    @classmethod
    async def open(cls, url: str, user: str) -> Socket:
        ws = await connect(url, subprotocols=[TRANSPORT], open_timeout=SAFETY_NET)  # type: ignore[list-item]
        socket = cls(ws)
        token = mint(hasura_claims(user))
        await socket.send({"type": "connection_init", "payload": {"headers": {"Authorization": f"Bearer {token}"}}})
        assert (await socket.receive())["type"] == "connection_ack"
        return socket

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """The next message that is not a keep-alive."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), SAFETY_NET))
            if message.get("type") not in ("ping", "ka"):
                return dict(message)

    async def subscribe(self) -> tuple[str, dict[str, Any]]:
        """Subscribe; the id and the first answer for it (``next`` when admitted, ``error`` when refused)."""
        op_id = f"s{next(self.ids)}"
        await self.send({"type": "subscribe", "id": op_id, "payload": {"query": SUBSCRIPTION}})
        async with asyncio.timeout(SAFETY_NET):
            while True:
                message = await self.receive()
                if message.get("id") == op_id and message["type"] in ("next", "error", "complete"):
                    return op_id, message

    async def complete(self, op_id: str) -> None:
        """Stop ``op_id``; returns once the edge handled it (a ping sent after it is answered)."""
        await self.send({"type": "complete", "id": op_id})
        await self.send({"type": "ping", "payload": {"after": op_id}})
        async with asyncio.timeout(SAFETY_NET):
            while await self.receive() != {"type": "pong", "payload": {"after": op_id}}:
                pass

    async def close(self) -> None:
        await self.ws.close()


def refused_for_the_cap(message: dict[str, Any]) -> bool:
    return bool(
        message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "subscription-limit-exceeded"
    )


async def test_one_subscription_cap_per_user_across_the_three_edges(replicas: Replicas) -> None:
    user = f"scale-user-{uuid.uuid4().hex[:8]}"
    first, second, third = [await Socket.open(replicas.ws_url(index), user) for index in range(3)]
    try:
        held, admitted = await first.subscribe()
        assert admitted["type"] == "next"
        _, admitted = await second.subscribe()
        assert admitted["type"] == "next"
        _, refused = await third.subscribe()  # the third for this user, on a third edge: over the cap of 2
        assert refused_for_the_cap(refused), refused
        assert "per key or user" in refused["payload"][0]["message"]

        await first.complete(held)  # a stop frees its slot for another edge
        _, admitted = await third.subscribe()
        assert admitted["type"] == "next"
        _, refused = await first.subscribe()
        assert refused_for_the_cap(refused), refused

        await second.close()  # a closed socket frees its slot too, once its edge has seen the close
        deadline = time.monotonic() + SAFETY_NET
        while True:
            _, answer = await first.subscribe()
            if answer["type"] == "next":
                break
            assert refused_for_the_cap(answer), answer
            assert time.monotonic() < deadline, "the closed socket's subscription was never released"
            await asyncio.sleep(0.1)
        _, refused = await third.subscribe()
        assert refused_for_the_cap(refused), refused
    finally:
        for socket in (first, second, third):
            await socket.close()


# 3. One revocation ----------------------------------------------------------------------------------------


def test_a_revoked_key_is_refused_by_every_edge_within_its_cache_time(replicas: Replicas) -> None:
    key = create_key(replicas, "unlimited")
    with httpx.Client(timeout=SAFETY_NET) as client:

        def post(index: int) -> httpx.Response:
            return client.post(replicas.url(index), json=QUERY, headers={"X-API-Key": key})

        assert [post(index).status_code for index in range(3)] == [200, 200, 200]  # each edge caches it now
        edge_cli(replicas, "keys", "revoke", key.split("_")[1])
        refusing: set[int] = set()
        deadline = time.monotonic() + SAFETY_NET
        while refusing != {0, 1, 2}:
            assert time.monotonic() < deadline, f"edges still accepting a revoked key: {sorted({0, 1, 2} - refusing)}"
            for index in sorted({0, 1, 2} - refusing):
                response = post(index)
                if response.status_code == 401:
                    assert error_code(response) == "api-key-revoked"
                    refusing.add(index)
                else:
                    assert response.status_code == 200  # still its cached answer
            time.sleep(0.1)
        for index in range(3):  # and it stays refused
            response = post(index)
            assert response.status_code == 401 and error_code(response) == "api-key-revoked"


# 4. One edge killed under load (last: it leaves two edges) ------------------------------------------------

LOAD = 300
CLIENTS = 6
KILL_AFTER = 90
KILLED = 1


@dataclass
class Attempt:
    request: int
    edge: int
    response: httpx.Response | None = None
    error: str | None = None


@dataclass
class Load:
    """Requests round-robin over the live edges; an attempt that got no response is retried on another."""

    replicas: Replicas
    key: str
    live: list[int] = field(default_factory=lambda: [0, 1, 2])
    attempts: list[Attempt] = field(default_factory=list)
    in_flight: dict[int, Attempt] = field(default_factory=dict)  # by id(attempt)
    in_flight_at_kill: set[int] = field(default_factory=set)  # request numbers
    answered: int = 0
    killed: bool = False
    answered_after_kill: dict[int, int] = field(default_factory=dict)

    def kill_when_due(self) -> None:
        """Once enough answers came back and a request is in flight on the victim: stop routing to it and
        SIGKILL it in one step of the loop, so ``in_flight_at_kill`` is exactly what it held at the kill."""
        if self.killed or self.answered < KILL_AFTER:
            return
        held = {attempt.request for attempt in self.in_flight.values() if attempt.edge == KILLED}
        if not held:
            return
        self.live.remove(KILLED)
        self.in_flight_at_kill = held
        os.kill(self.replicas.edges[KILLED].process.pid, signal.SIGKILL)
        self.killed = True

    async def attempt(self, client: httpx.AsyncClient, request: int, edge: int) -> Attempt:
        attempt = Attempt(request, edge)
        self.attempts.append(attempt)
        self.in_flight[id(attempt)] = attempt
        after_kill = self.killed
        try:
            attempt.response = await client.post(
                self.replicas.url(edge), json=QUERY, headers={"X-API-Key": self.key, "X-Load-Request": str(request)}
            )
        except httpx.TransportError as exc:  # never got a response: the only thing a client may retry
            attempt.error = type(exc).__name__
        finally:
            del self.in_flight[id(attempt)]
        if attempt.response is not None:
            self.answered += 1
            if after_kill:
                self.answered_after_kill[edge] = self.answered_after_kill.get(edge, 0) + 1
        self.kill_when_due()
        return attempt

    async def send(self, client: httpx.AsyncClient, request: int) -> None:
        edge = self.live[request % len(self.live)]
        while (await self.attempt(client, request, edge)).response is None:
            others = [other for other in self.live if other != edge]
            assert others, f"request {request}: no edge left to retry on"
            edge = others[request % len(others)]

    async def run(self) -> None:
        numbers = iter(range(LOAD))

        async def client_loop() -> None:
            async with httpx.AsyncClient(timeout=SAFETY_NET) as client:
                for request in numbers:
                    await self.send(client, request)

        await asyncio.wait_for(asyncio.gather(*(client_loop() for _ in range(CLIENTS))), SAFETY_NET * 2)


async def test_an_edge_killed_under_load_loses_nothing_but_its_in_flight_requests(replicas: Replicas) -> None:
    key = await asyncio.to_thread(create_key, replicas, "unlimited")
    replicas.double.faults.delay = 0.02  # every request spends a moment in Hasura, so some are in flight
    try:
        load = Load(replicas, key)
        await load.run()
    finally:
        replicas.double.reset()
    assert load.killed
    assert replicas.edges[KILLED].process.wait(timeout=SAFETY_NET) == -signal.SIGKILL

    answers: dict[int, list[Attempt]] = {}
    for attempt in load.attempts:
        if attempt.response is not None:
            answers.setdefault(attempt.request, []).append(attempt)
    assert sorted(answers) == list(range(LOAD))  # every request was answered ...
    assert all(len(answered) == 1 for answered in answers.values())  # ... exactly once
    assert all(answered[0].response.status_code == 200 for answered in answers.values())  # type: ignore[union-attr]

    failed = [attempt for attempt in load.attempts if attempt.response is None]
    assert {attempt.edge for attempt in failed} <= {KILLED}, failed  # the live edges never failed a request
    assert {attempt.request for attempt in failed} <= load.in_flight_at_kill, failed  # only what it held
    assert len(failed) == len({attempt.request for attempt in failed})  # each failed over once, and it held
    # The two others kept serving after the kill.
    assert set(load.answered_after_kill) == {0, 2}
    # And no edge complained along the module (a shared store failing open would say so here).
    for edge in replicas.edges:
        assert [r for r in edge.records() if r.get("level") not in ("debug", "info")] == []
        assert not any("Traceback" in line for line in edge.lines)
