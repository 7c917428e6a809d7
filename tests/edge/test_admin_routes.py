"""``/admin`` routes: their own secret, constant-time checked, absent without it."""

from __future__ import annotations

import httpx

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble


def test_schema_refresh_requires_the_admin_secret_and_reintrospects_hasura(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(admin_secret="admin-route-secret")
    url = f"{edge.url}/admin/schema/refresh"
    assert httpx.post(url).status_code == 404
    assert httpx.post(url, headers={"X-Edge-Admin-Secret": "wrong"}).status_code == 404
    assert hasura.requests == []
    response = httpx.post(url, headers={"X-Edge-Admin-Secret": "admin-route-secret"})
    assert response.status_code == 200
    assert response.json() == {"refreshed": True, "schema_loaded": True}
    [record] = hasura.graphql_requests()
    assert record.json()["operationName"] == "IntrospectionQuery"
    assert record.session == {"x-hasura-role": "admin"}


def test_schema_refresh_reports_503_when_hasura_cannot_be_introspected(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(admin_secret="admin-route-secret")
    hasura.faults.status = 503
    response = httpx.post(f"{edge.url}/admin/schema/refresh", headers={"X-Edge-Admin-Secret": "admin-route-secret"})
    assert response.status_code == 503
    assert response.json() == {"refreshed": False, "schema_loaded": True}  # the previous schema is kept


def test_admin_routes_do_not_exist_without_an_admin_secret(edge, hasura: HasuraDouble):
    response = httpx.post(f"{edge.url}/admin/schema/refresh", headers={"X-Edge-Admin-Secret": ""})
    assert response.status_code == 404


def test_edge_estimates_without_schema_until_hasura_can_be_introspected(start_edge: EdgeFactory, hasura: HasuraDouble):
    hasura.faults.status = 503
    hasura.faults.times = 1  # only the start-up introspection fails
    edge = start_edge(admin_secret="admin-route-secret")
    app = edge.app
    assert app.schema_source.schema is None  # started anyway, estimating from documents alone
    assert app.costs.model.schema_aware is False
    response = httpx.post(f"{edge.url}/admin/schema/refresh", headers={"X-Edge-Admin-Secret": "admin-route-secret"})
    assert response.json() == {"refreshed": True, "schema_loaded": True}
    assert app.costs.model.schema_aware is True
