"""A protocol-faithful Hasura GraphQL Engine v2 (CE) double for the edge's tests: the HTTP side.

Usage::

    double = HasuraDouble(admin_secret="s3cret")          # unauthorized_role=, sdl=, field_suggestions=
    with serving(double.app) as server:                    # tests.support.servers
        httpx.post(f"{server.url}/v1/graphql", json={"query": "{ users { id } }"},
                   headers={"x-hasura-admin-secret": "s3cret", "x-hasura-role": "user"})
    double.last().session        # {"x-hasura-role": "user"}  (role impersonation with the admin secret)
    double.faults.status = 503   # or delay / hang / drop / times / include_health
    double.rest.endpoints        # /api/rest/<url>: the demo's rest_endpoints.yaml unless
                                 # HasuraDouble(rest_endpoints=[...], query_collections=[...])
    double.reset()

Behaviour follows Hasura v2's server source and its test suite (hasura/graphql-engine: admin-secret
sessions, routes, bodies, statuses, headers); each module's docstring names the part it implements and
any deliberate deviation.
"""

from __future__ import annotations

from .double import HASURA_VERSION, HasuraDouble
from .faults import Faults
from .records import RecordedRequest
from .schema import DEMO_SDL

__all__ = ["DEMO_SDL", "HASURA_VERSION", "Faults", "HasuraDouble", "RecordedRequest"]
