"""GET calls of cacheable queries are answered from the edge's response cache, keyed by the session as on
``/graphql`` (and sharing its entries), with ``Cache-Control``, ``ETag`` and 304 on ``If-None-Match``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.edge.conftest import DOUBLE_ADMIN_SECRET, EdgeFactory
from tests.edge.rest.test_rest_through_the_edge import METADATA, call, rest_requests, token
from tests.hasura_double import HasuraDouble
from tests.hasura_double.schema import DEMO_SDL
from tests.support.servers import RunningServer, start_server

LIST_PRODUCTS = {"operation_name": "ListProducts", "ttl": 60}


def test_a_rule_matched_get_is_served_from_the_cache_with_an_etag(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(hasura_metadata_dir=str(METADATA), cache_rules=[LIST_PRODUCTS])
    bearer = token("user-1")
    first = call(edge, "GET", "products?limit=2", bearer=bearer)
    assert first.status_code == 200
    assert first.headers["x-cache"] == "MISS"
    assert first.headers["cache-control"] == "private, max-age=60"
    etag = first.headers["etag"]
    second = call(edge, "GET", "products?limit=2", bearer=bearer)
    assert (second.status_code, second.headers["x-cache"], second.headers["etag"]) == (200, "HIT", etag)
    assert second.json() == first.json()
    assert "products" in second.json()
    assert len(rest_requests(hasura)) == 1
    unchanged = call(edge, "GET", "products?limit=2", bearer=bearer, headers={"If-None-Match": f'W/{etag}, "other"'})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert len(rest_requests(hasura)) == 1
    changed = call(edge, "GET", "products?limit=2", bearer=bearer, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200
    assert changed.json() == first.json()


def test_entries_are_per_session_and_per_variables(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(hasura_metadata_dir=str(METADATA), cache_rules=[LIST_PRODUCTS])
    assert call(edge, "GET", "products?limit=2", bearer=token("user-1")).headers["x-cache"] == "MISS"
    assert call(edge, "GET", "products?limit=2", bearer=token("user-2")).headers["x-cache"] == "MISS"
    assert call(edge, "GET", "products?limit=3", bearer=token("user-1")).headers["x-cache"] == "MISS"
    assert call(edge, "GET", "products?limit=2", bearer=token("user-2")).headers["x-cache"] == "HIT"
    assert len(rest_requests(hasura)) == 3


def test_a_rest_call_and_the_same_graphql_query_share_an_entry(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(hasura_metadata_dir=str(METADATA), cache_rules=[LIST_PRODUCTS])
    bearer = token("user-1")
    [demo] = yaml.safe_load((METADATA / "query_collections.yaml").read_text())
    query = next(item["query"] for item in demo["definition"]["queries"] if item["name"] == "ListProducts")
    graphql = httpx.post(
        f"{edge.url}/graphql",
        json={"query": query, "variables": {"limit": 2}},
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )
    assert graphql.headers["x-cache"] == "MISS", graphql.text
    rest = call(edge, "GET", "products?limit=2", bearer=bearer)
    assert rest.headers["x-cache"] == "HIT"
    assert rest.json() == graphql.json()["data"]  # REST's shape: the data alone
    assert rest_requests(hasura) == []


# --- @cached on the saved query: a double of its own serving these endpoints ---------------------------

ENDPOINTS = [
    {
        "name": "cheap",
        "url": "cheap",
        "methods": ["GET", "POST"],
        "definition": {"query": {"collection_name": "cached", "query_name": "Cheap"}},
    }
]
COLLECTIONS = [
    {
        "name": "cached",
        "definition": {
            "queries": [{"name": "Cheap", "query": "query Cheap @cached(ttl: 30) { products(limit: 1) { id } }"}]
        },
    }
]


@pytest.fixture
def cached_double() -> Iterator[tuple[HasuraDouble, RunningServer]]:
    # Hasura CE declares @cached (and ignores it); the demo double's schema does not, so it is added here.
    double = HasuraDouble(
        admin_secret=DOUBLE_ADMIN_SECRET,
        sdl=DEMO_SDL,
        rest_endpoints=ENDPOINTS,
        query_collections=COLLECTIONS,
    )
    server = start_server(double.app)
    yield double, server
    server.stop()


def test_a_cached_saved_query_is_cached_for_get_only(
    start_edge: EdgeFactory, cached_double: tuple[HasuraDouble, RunningServer], tmp_path: Path
):
    double, server = cached_double
    (tmp_path / "rest_endpoints.yaml").write_text(yaml.safe_dump(ENDPOINTS))
    (tmp_path / "query_collections.yaml").write_text(yaml.safe_dump(COLLECTIONS))
    (tmp_path / "databases").mkdir()
    (tmp_path / "databases" / "databases.yaml").write_text("[]\n")
    edge = start_edge(hasura_url=server.url, hasura_metadata_dir=str(tmp_path))
    double.reset()
    bearer = token("user-1")
    first = call(edge, "GET", "cheap", bearer=bearer)
    assert (first.status_code, first.headers["x-cache"]) == (200, "MISS"), first.text
    assert first.headers["cache-control"] == "private, max-age=30"
    assert call(edge, "GET", "cheap", bearer=bearer).headers["x-cache"] == "HIT"
    posted = call(edge, "POST", "cheap", bearer=bearer)
    assert posted.status_code == 200
    assert "x-cache" not in posted.headers and "etag" not in posted.headers
    assert [record.method for record in rest_requests(double)] == ["GET", "POST"]
