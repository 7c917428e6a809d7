"""The stages run in the declared order, from the declaration itself: recorded while real requests run.

Each stage of the edge that ``create_app`` builds is wrapped in a recorder that notes its step's name
and calls it; the handler then runs that declaration under the edge's own server, against the Hasura
double. What is asserted is what ran, in the order it ran: a swap in the declaration, a stage the
handler calls by hand, or a stage it skips would all show here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Iterator

import httpx
import pytest

from edge.app import EdgeApp, create_app
from edge.context import RequestContext
from edge.graphql_http import GraphQLHTTPHandler
from edge.pipeline.order import Stage, Stages
from edge.rest import RestApp, RestHandler
from tests.edge.conftest import edge_settings, start_edge_app
from tests.edge.rest.test_rest_through_the_edge import METADATA, call, rest_requests, token
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import mint

QUERY = {"query": "{ products { id } }"}
GRAPHQL_ORDER = [
    "ReceiveRequest",
    "Authenticate",
    "IdentifyPlan",
    "AnalyseOperation",
    "Limit",
    "InjectSession",
    "Proxy",
    "FinishResponse",
    "Respond",
]


class Recorded:
    """A stage that notes the class of the stage it wraps in ``ran``, then runs it."""

    def __init__(self, stage: Stage, ran: list[str]) -> None:
        self.stage = stage
        self.ran = ran

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        self.ran.append(type(self.stage).__name__)
        return self.stage(ctx)


def recorded(stages: Stages, ran: list[str]) -> Stages:
    """``stages`` with every step wrapped in a :class:`Recorded`."""
    wrapped = {
        field.name: Recorded(getattr(stages, field.name), ran)
        for field in dataclasses.fields(stages)
        if getattr(stages, field.name) is not None
    }
    return dataclasses.replace(stages, **wrapped)


def with_graphql_stages(app: EdgeApp, stages: Stages) -> EdgeApp:
    """The same app, its ``/graphql`` handler running ``stages``."""
    graphql = app.graphql
    handler = GraphQLHTTPHandler(
        stages,
        cors=graphql.cors,
        observer=graphql.observer,
        tracing=graphql.tracing,
        tls=graphql.tls,
        path=graphql.path,
        error_statuses=graphql.error_statuses,
        graphiql=graphql.graphiql,
    )
    return EdgeApp(handler, app.framework, schema_source=app.schema_source, costs=app.costs, rest=app.rest)


def start(
    app: EdgeApp, hasura_url: str, hasura: HasuraDouble, running: list[RunningServer], **overrides: object
) -> RunningServer:
    server = start_edge_app(app, edge_settings(hasura_url, **overrides))
    running.append(server)
    hasura.reset()
    return server


@pytest.fixture
def running() -> Iterator[list[RunningServer]]:
    servers: list[RunningServer] = []
    yield servers
    for server in servers:
        server.stop()


def test_a_proxied_request_runs_every_step_in_the_declared_order(
    hasura_url: str, hasura: HasuraDouble, running: list[RunningServer]
):
    ran: list[str] = []
    app = create_app(edge_settings(hasura_url, response_cache="off"))
    edge = start(with_graphql_stages(app, recorded(app.graphql.stages, ran)), hasura_url, hasura, running)
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {mint()}"})
    assert response.status_code == 200, response.text
    assert ran == GRAPHQL_ORDER
    assert len(hasura.requests) == 1


def test_the_order_run_is_the_order_declared(hasura_url: str, hasura: HasuraDouble, running: list[RunningServer]):
    """Swapping two steps in the declaration swaps them in what runs (the declaration is the executor)."""
    ran: list[str] = []
    app = create_app(edge_settings(hasura_url))
    stages = app.graphql.stages
    swapped = dataclasses.replace(stages, limit=stages.analyse, analyse=stages.limit)
    edge = start(with_graphql_stages(app, recorded(swapped, ran)), hasura_url, hasura, running)
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {mint()}"})
    assert response.status_code == 200, response.text
    assert ran[3:5] == ["Limit", "AnalyseOperation"]


def test_a_refusal_stops_the_run_at_the_refusing_step(
    hasura_url: str, hasura: HasuraDouble, running: list[RunningServer]
):
    ran: list[str] = []
    app = create_app(edge_settings(hasura_url))
    edge = start(with_graphql_stages(app, recorded(app.graphql.stages, ran)), hasura_url, hasura, running)
    response = httpx.post(f"{edge.url}/graphql", json=QUERY)  # no credentials
    assert response.status_code == 401
    assert ran == ["ReceiveRequest", "Authenticate"]
    assert hasura.requests == []


def test_with_the_response_cache_the_proxy_step_asks_it_first(
    hasura_url: str, hasura: HasuraDouble, running: list[RunningServer]
):
    ran: list[str] = []
    app = create_app(edge_settings(hasura_url))  # the response cache is on by default (memory)
    edge = start(with_graphql_stages(app, recorded(app.graphql.stages, ran)), hasura_url, hasura, running)
    cached = {"query": "query Products @cached(ttl: 60) { products { id } }"}
    headers = {"Authorization": f"Bearer {mint()}"}
    first = httpx.post(f"{edge.url}/graphql", json=cached, headers=headers)
    second = httpx.post(f"{edge.url}/graphql", json=cached, headers=headers)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    cached_order = [name if name != "Proxy" else "CachedProxy" for name in GRAPHQL_ORDER]
    assert ran == cached_order * 2
    assert len(hasura.requests) == 1


def test_rest_runs_the_graphql_declarations_variant(
    hasura_url: str, hasura: HasuraDouble, running: list[RunningServer]
):
    """REST replaces receive, proxy and respond, adds resolve_endpoint, and runs the same objects for
    every other step, in the same order."""
    ran: list[str] = []
    settings = edge_settings(hasura_url, hasura_metadata_dir=str(METADATA), response_cache="off")
    app = create_app(settings)
    assert app.rest is not None
    rest_handler = app.rest.handler
    shared = ["authenticate", "identify_plan", "analyse", "limit", "inject_session", "finish"]
    for name in shared:
        assert getattr(rest_handler.stages, name) is getattr(app.graphql.stages, name), name
    rest = RestApp(
        RestHandler(
            app.graphql,
            recorded(rest_handler.stages, ran),
            rest_handler.endpoints,
            authenticate=rest_handler.authenticate,
            schema_source=rest_handler.schema_source,
        ),
        app.rest.openapi,
    )
    with_rest = EdgeApp(app.graphql, app.framework, schema_source=app.schema_source, costs=app.costs, rest=rest)
    edge = start(with_rest, hasura_url, hasura, running, hasura_metadata_dir=str(METADATA), response_cache="off")
    response = call(edge, "GET", "products?limit=2", bearer=token("user-1"))
    assert response.status_code == 200, response.text
    assert "products" in response.json()
    assert ran == [
        "ReceiveRestCall",
        "Authenticate",
        "IdentifyPlan",
        "ResolveEndpoint",
        "AnalyseOperation",
        "Limit",
        "InjectSession",
        "RestProxy",
        "FinishResponse",
        "RestRespond",
    ]
    assert len(rest_requests(hasura)) == 1
