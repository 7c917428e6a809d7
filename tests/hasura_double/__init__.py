"""A protocol-faithful Hasura GraphQL Engine double for the edge's tests (HTTP side).

Usage::

    double = HasuraDouble(admin_secret="s3cret")
    with serving(double.app) as server:
        httpx.post(f"{server.url}/v1/graphql", json={"query": "{ users { id } }"},
                   headers={"x-hasura-admin-secret": "s3cret"})
    double.last().session  # {"x-hasura-role": "admin"}
"""

from __future__ import annotations

from .double import HASURA_VERSION, HasuraDouble
from .faults import Faults
from .records import RecordedRequest
from .schema import DEMO_SDL

__all__ = ["DEMO_SDL", "HASURA_VERSION", "Faults", "HasuraDouble", "RecordedRequest"]
