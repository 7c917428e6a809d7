"""Hasura down, slow, broken or erroring: GraphQL-shaped 502/504, or Hasura's own answer passed back."""

from __future__ import annotations

import httpx

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer, free_loopback_socket
from tests.support.tokens import mint

QUERY = {"query": "{ products { id } }"}


def post(edge: RunningServer) -> httpx.Response:
    return httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {mint()}"}, timeout=10)


def test_hasura_unreachable_is_502_upstream_unavailable(start_edge: EdgeFactory):
    sock = free_loopback_socket()  # bound but never listening: connections are refused
    port = sock.getsockname()[1]
    try:
        edge = start_edge(hasura_url=f"http://127.0.0.1:{port}")
        response = post(edge)
    finally:
        sock.close()
    assert response.status_code == 502
    assert response.json() == {
        "errors": [{"message": "The GraphQL engine is unavailable", "extensions": {"code": "upstream-unavailable"}}]
    }


def test_hasura_too_slow_is_504_upstream_timeout(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(upstream_read_timeout_seconds=0.3)
    hasura.faults.delay = 2.0
    response = post(edge)
    assert response.status_code == 504
    assert response.json()["errors"][0]["extensions"]["code"] == "upstream-timeout"


def test_hasura_hanging_is_504(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(upstream_read_timeout_seconds=0.3)
    hasura.faults.hang = True
    response = post(edge)
    assert response.status_code == 504


def test_hasura_dropping_the_connection_is_502(edge: RunningServer, hasura: HasuraDouble):
    hasura.faults.drop = True
    response = post(edge)
    assert response.status_code == 502
    assert "Traceback" not in response.text


def test_hasura_5xx_is_passed_back_as_is(edge: RunningServer, hasura: HasuraDouble):
    hasura.faults.status = 503
    hasura.faults.status_body = b"upstream maintenance"
    response = post(edge)
    assert response.status_code == 503
    assert response.content == b"upstream maintenance"


def test_hasura_graphql_errors_are_passed_back_with_status_200(edge: RunningServer, hasura: HasuraDouble):
    response = httpx.post(
        f"{edge.url}/graphql",
        json={"query": "{ nope { id } }"},
        headers={"Authorization": f"Bearer {mint()}"},
    )
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "validation-failed"
    assert response.headers["content-type"].startswith("application/json")


def test_the_edge_recovers_when_hasura_comes_back(edge: RunningServer, hasura: HasuraDouble):
    hasura.faults.drop = True
    assert post(edge).status_code == 502
    hasura.faults.drop = False
    assert post(edge).status_code == 200
