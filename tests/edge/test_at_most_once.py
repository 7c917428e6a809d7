"""At most once: a request that is not made only of queries reaches Hasura once, whatever fails.

Hasura (the double) reads the request on a pooled keep-alive connection, records it, then closes the
connection without a byte of response (``faults.drop``): it may have run it. The edge must not send a
mutation again, on a new connection or on another Hasura, and answers a GraphQL-shaped 502; a request
made only of queries may be sent again (a new connection, then the next Hasura) and is answered.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from edge.context import RequestContext
from edge.errors import UpstreamUnavailable
from edge.graphql.analysis import Analyser
from edge.pipeline.proxy import Proxy
from edge.upstream.balancer import BalancedUpstream, Target
from edge.upstream.lean import LeanUpstream
from tests.edge.conftest import DOUBLE_ADMIN_SECRET, EdgeFactory
from tests.edge.upstream import fake_upstream as fu
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer, start_server
from tests.support.tokens import hasura_claims, mint

QUERY = {"query": "query Products { products(limit: 1) { id } }"}
MUTATION = {"query": 'mutation Order { insert_orders_one(object: {status: "pending"}) { id } }'}
UNAVAILABLE = {
    "errors": [{"message": "The GraphQL engine is unavailable", "extensions": {"code": "upstream-unavailable"}}]
}
_NEEDS = {"httpx2": "httpx2", "httpx-aiohttp": "httpx_aiohttp"}
Balanced = Callable[[str, int], BalancedUpstream]


def kinds(*names: str) -> list[Any]:
    return [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                name in _NEEDS and importlib.util.find_spec(_NEEDS[name]) is None, reason="bench extra not installed"
            ),
        )
        for name in names
    ]


ALL_KINDS = kinds("lean", "httpx", "httpx2", "httpx-aiohttp")


def post(edge: RunningServer, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {mint(hasura_claims('u-1'))}"}
    return httpx.post(f"{edge.url}/graphql", json=body, headers=headers, timeout=10)


def bodies(double: HasuraDouble) -> list[Any]:
    return [record.json() for record in double.graphql_requests()]


def drop_next(double: HasuraDouble, times: int = 1) -> None:
    """The next ``times`` GraphQL requests are read and recorded, then the connection closes without a byte."""
    double.faults.times = times
    double.faults.drop = True


@pytest.fixture
def second_hasura() -> Iterator[tuple[HasuraDouble, str]]:
    double = HasuraDouble(admin_secret=DOUBLE_ADMIN_SECRET)
    server = start_server(double.app)
    yield double, server.url
    server.stop()


# --- One Hasura ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_mutation_dropped_on_a_reused_connection_reaches_hasura_once(
    kind: str, start_edge: EdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_edge(upstream_client=kind)
    assert post(edge, QUERY).status_code == 200  # the connection to Hasura is now pooled
    hasura.reset()
    drop_next(hasura)
    response = post(edge, MUTATION)
    assert (response.status_code, response.json()) == (502, UNAVAILABLE)
    assert bodies(hasura) == [MUTATION]  # Hasura may have run it: it was not sent again
    assert post(edge, MUTATION).status_code == 200  # the next one goes on a new connection
    assert bodies(hasura) == [MUTATION, MUTATION]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_batch_with_a_query_and_a_mutation_is_a_mutation(
    kind: str, start_edge: EdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_edge(upstream_client=kind)
    assert post(edge, QUERY).status_code == 200
    hasura.reset()
    drop_next(hasura)
    batch = [QUERY, MUTATION]
    response = post(edge, batch)
    assert (response.status_code, response.json()) == (502, UNAVAILABLE)
    assert bodies(hasura) == [batch]


def test_a_query_dropped_on_a_reused_connection_is_sent_again_and_answered(
    start_edge: EdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_edge(upstream_client="lean")
    assert post(edge, QUERY).status_code == 200
    hasura.reset()
    batch = [QUERY, QUERY]
    for body in (QUERY, batch):
        drop_next(hasura)
        response = post(edge, body)
        assert response.status_code == 200
        assert "errors" not in response.text
    assert bodies(hasura) == [QUERY, QUERY, batch, batch]  # each dropped once, then answered


def test_a_cached_query_dropped_on_a_reused_connection_is_sent_again_and_stored(
    start_edge: EdgeFactory, hasura: HasuraDouble
) -> None:
    """The response cache's path: the leader's request is a query, so it may go twice; it is then stored."""
    edge = start_edge(upstream_client="lean")
    assert post(edge, QUERY).status_code == 200
    hasura.reset()
    drop_next(hasura)
    cached = {"query": "query Cached @cached(ttl: 60) { products(limit: 1) { id } }"}
    first = post(edge, cached)
    assert (first.status_code, first.headers["x-cache"]) == (200, "MISS")
    assert post(edge, cached).headers["x-cache"] == "HIT"
    assert len(hasura.graphql_requests()) == 2  # dropped once, answered once, then served from the cache


# --- Two Hasura instances (EDGE_HASURA_URLS) -------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_mutation_dropped_by_one_hasura_is_not_failed_over_to_the_other(
    kind: str, start_edge: EdgeFactory, hasura: HasuraDouble, hasura_url: str, second_hasura: tuple[HasuraDouble, str]
) -> None:
    other, other_url = second_hasura
    edge = start_edge(upstream_client=kind, hasura_urls=f"{hasura_url}, {other_url}")
    assert [post(edge, QUERY).status_code for _ in range(2)] == [200, 200]  # one pooled connection to each
    assert (len(hasura.graphql_requests()), len(other.graphql_requests())) == (1, 1)
    hasura.reset()
    other.reset()
    drop_next(hasura)
    drop_next(other)  # whichever gets it drops it; a resent copy would show up in either record
    response = post(edge, MUTATION)
    assert (response.status_code, response.json()) == (502, UNAVAILABLE)
    assert bodies(hasura) + bodies(other) == [MUTATION]


@pytest.mark.parametrize("kind", kinds("lean", "httpx-aiohttp"))
def test_a_query_dropped_by_one_hasura_is_failed_over_and_answered(
    kind: str, start_edge: EdgeFactory, hasura: HasuraDouble, hasura_url: str, second_hasura: tuple[HasuraDouble, str]
) -> None:
    """(The httpx and httpx2 clients report this close as a broken response, which is never failed over.)"""
    other, other_url = second_hasura
    edge = start_edge(upstream_client=kind, hasura_urls=f"{hasura_url}, {other_url}")
    assert [post(edge, QUERY).status_code for _ in range(2)] == [200, 200]
    hasura.reset()
    other.reset()
    drop_next(hasura, times=2)  # the pooled connection and the lean client's one new connection
    statuses = [post(edge, QUERY).status_code for _ in range(2)]  # the first pick of the two is `hasura`
    assert statuses == [200, 200]
    assert all(record.fault == "drop" for record in hasura.graphql_requests())
    assert len(other.graphql_requests()) == 2  # the failed-over query and the next in the rotation


# --- The proxy stage: what it tells the client ------------------------------------------------------------


@pytest.fixture
async def balanced() -> AsyncIterator[Callable[[str, int], BalancedUpstream]]:
    made: list[BalancedUpstream] = []

    def make(url: str, targets: int) -> BalancedUpstream:
        upstream = BalancedUpstream(
            [Target(url + "/" * n) for n in range(targets)],  # every target is this server
            make_client=lambda target: LeanUpstream(target, connect_timeout=2.0, read_timeout=5.0),
            health_interval=None,
        )
        made.append(upstream)
        return upstream

    yield make
    for upstream in made:
        await upstream.aclose()


@pytest.mark.parametrize("targets", [1, 2])
@pytest.mark.parametrize(
    ("payload", "analysed"), [(QUERY, 0), ([QUERY, QUERY], 1)], ids=["not-analysed", "batch-half-analysed"]
)
async def test_a_request_without_a_complete_analysis_is_sent_once(
    targets: int, payload: Any, analysed: int, serve_dropping: fu.FakeUpstream, balanced: Balanced
) -> None:
    """Proxy decides from ``ctx.analyses``: no analysis, or fewer analyses than operations, is not a query."""
    server = serve_dropping
    proxy = Proxy(balanced(server.url, targets))
    for _ in range(targets):  # one pooled connection per target
        await proxy(context(QUERY, analyses=1))
    with pytest.raises(UpstreamUnavailable):
        await proxy(context(payload, analyses=analysed))
    # Read once on a pooled connection, then dropped: not resent there, not failed over.
    assert len(server.requests) == targets + 1


@pytest.mark.parametrize("targets", [1, 2])
async def test_a_request_analysed_as_queries_only_is_sent_again(
    targets: int, serve_dropping: fu.FakeUpstream, balanced: Balanced
) -> None:
    server = serve_dropping
    proxy = Proxy(balanced(server.url, targets))
    for _ in range(targets):
        await proxy(context(QUERY, analyses=1))
    proven = context([QUERY, QUERY], analyses=2)
    await proxy(proven)
    assert proven.response is not None and proven.response.status == 200
    assert len(server.requests) == targets + 2  # dropped on its pooled connection, answered on a new one


def context(payload: Any, *, analyses: int) -> RequestContext:
    """A request as the proxy stage sees it, with the first ``analyses`` of its operations analysed."""
    operations = payload if isinstance(payload, list) else [payload]
    ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="r")
    ctx.payload = payload
    ctx.is_batch = isinstance(payload, list)
    ctx.body = orjson.dumps(payload)
    analyser = Analyser()
    ctx.analyses = tuple(analyser(op["query"], None, max_tokens=10_000) for op in operations[:analyses])
    return ctx


@pytest.fixture
async def serve_dropping() -> Any:
    """Answers the first request on each connection; reads the second, then closes without a byte."""
    server = await fu.FakeUpstream(fu.one_then_close_on_next).start()
    yield server
    await server.stop()
