"""Helpers for the response cache tests: a clock, request contexts built like the pipeline builds them,
a fake Hasura behind the proxy seam, and both store backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import pytest

from edge.cache import MemoryResponseCache, RedisResponseCache, ResponseCacheStore
from edge.context import RequestContext
from edge.graphql.analysis import analyse
from edge.redis_topology import open_shared_redis
from edge.session import Identity, session_from_claims
from edge.upstream.base import UpstreamResponse
from tests.support.redis_topologies import topology_params, topology_url

JSON = (b"content-type", b"application/json; charset=utf-8")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_ctx(
    query: str,
    *,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    role: str = "user",
    session: Mapping[str, str] | None = None,
    batch: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> RequestContext:
    """A context as the stages before the cache leave it: body, payload, identity and analyses."""
    request: dict[str, Any] = {"query": query}
    if operation_name is not None:
        request["operationName"] = operation_name
    if variables is not None:
        request["variables"] = dict(variables)
    ctx = RequestContext(method="POST", headers=headers or [], query_string=b"", client=None, request_id="req-1")
    ctx.payload = [request, dict(request)] if batch else request
    ctx.is_batch = batch
    ctx.body = orjson.dumps(ctx.payload)
    variables_of_session = dict(session) if session is not None else {"x-hasura-user-id": "1"}
    ctx.identity = Identity(session=session_from_claims(role, variables_of_session), credential="jwt")
    ctx.analyses = [analyse(op["query"], op.get("operationName"), max_tokens=10_000) for op in ctx.operations]
    return ctx


class FakeHasura:
    """The proxy stage's stand-in: answers after ``delay`` seconds with a body naming the caller."""

    def __init__(self, *, delay: float = 0.0, status: int = 200, errors: bool = False) -> None:
        self.delay = delay
        self.status = status
        self.errors = errors
        self.fail: Exception | None = None
        self.calls = 0
        self.bodies: list[bytes] = []

    async def __call__(self, ctx: RequestContext) -> None:
        self.calls += 1
        call = self.calls
        self.bodies.append(ctx.body)
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        session = ctx.session
        assert session is not None
        document: dict[str, Any] = {"data": {"role": session.role, "vars": dict(session.variables), "call": call}}
        if self.errors:
            document = {"errors": [{"message": "boom", "extensions": {"code": "unexpected"}}]}
        headers = [JSON, (b"x-request-id", b"from-hasura")]
        ctx.response = UpstreamResponse(self.status, headers, orjson.dumps(document))


def unique_prefix() -> str:
    return f"test:cache:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=topology_params("memory"))
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[ResponseCacheStore]:
    """Memory, and Redis in each topology (one server, Sentinel, Cluster) under a prefix unique to the test."""
    if request.param == "memory":
        yield MemoryResponseCache(100, 1024 * 1024, clock=clock)
        return
    shared = open_shared_redis(topology_url(request, request.param), timeout=2.0)
    yield RedisResponseCache(shared.client, prefix=unique_prefix(), timeout=2.0)  # type: ignore[arg-type]
    await shared.aclose()
