"""The paths the GraphQL endpoint answers on, over HTTP and WebSocket alike.

``/graphql`` is the edge's own; ``/v1/graphql`` is Hasura's, so a client that talked to Hasura moves to
the edge by changing its host only. Both run the same pipeline against the same Hasura endpoint
(``/v1/graphql``). Hasura's other GraphQL paths are not served (404 ``not-found``, over HTTP and before
a WebSocket upgrade alike): ``/v1beta1/relay`` has a schema of its own that the edge's analysis does not know, and the
deprecated ``/v1alpha1/graphql`` keeps error statuses that ``/v1/graphql`` answers as 200
(``docs/operations.md``, "What is served").
"""

from __future__ import annotations

from typing import Final

__all__ = ["GRAPHQL_PATHS"]

GRAPHQL_PATHS: Final[tuple[str, ...]] = ("/graphql", "/v1/graphql")
