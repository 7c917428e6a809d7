"""``HasuraDouble``: a protocol-faithful stand-in for Hasura GraphQL Engine v2 (CE) over HTTP.

Behaviour follows Hasura v2's server source and tests (admin-secret auth and sessions; routes, request
and response bodies, statuses, headers, x-request-id); see the module docstrings of
``auth``, ``execution``, ``validation``, ``app`` and ``faults``. Serve ``double.app`` with
``tests.support.servers.serving``; the double's state may be read and switched from any thread.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from graphql import GraphQLSchema, build_schema

from .app import DoubleApp
from .execution import Executor
from .faults import Faults
from .records import RecordedRequest
from .rest import RestEndpoints
from .schema import DEMO_SDL
from .websocket import WebSocketApp, WebSocketDouble

__all__ = ["HASURA_VERSION", "HasuraDouble"]

HASURA_VERSION = "v2.48.16"


@functools.lru_cache(maxsize=8)
def _build_schema(sdl: str) -> GraphQLSchema:
    """Schemas are built once per SDL text and shared (doubles never mutate them)."""
    return build_schema(sdl)


@functools.lru_cache(maxsize=1)
def _demo_rest_endpoints() -> RestEndpoints:
    """The demo's ``rest_endpoints.yaml`` and ``query_collections.yaml`` (hasura/metadata), read once."""
    from tests.support.hasura_metadata import load_metadata

    metadata = load_metadata()
    return RestEndpoints(metadata.get("rest_endpoints") or [], metadata.get("query_collections") or [])


class HasuraDouble:
    """Hasura in admin-secret mode with a fixed schema and deterministic data.

    - ``app``: the ASGI application (lifespan, http, websocket).
    - ``requests``: every HTTP request received, in arrival order (appended under a lock).
    - ``faults``: :class:`Faults` switches for ``/v1/graphql`` (and optionally the health routes).
    - ``healthy``: ``False`` makes ``/healthz`` answer 500 ``ERROR``.
    - ``field_suggestions``: append graphql-js style "Did you mean ...?" hints to validation errors (real
      Hasura never does; the edge must strip them).
    - ``gzip``: compress successful responses for clients that accept gzip, as Hasura does.
    - ``ws`` / ``websocket_app``: the WebSocket side (both subscription protocols, ``websocket.py``).
    - ``rest``: the RESTified endpoints served under ``/api/rest/`` (``rest.py``): by default the demo's
      ``hasura/metadata`` ``rest_endpoints`` and ``query_collections``; pass both lists to serve others.
      ``rest.inconsistencies`` lists what Hasura would report as inconsistent metadata.
    """

    def __init__(
        self,
        *,
        admin_secret: str = "double-admin-secret",
        unauthorized_role: str | None = None,
        sdl: str = DEMO_SDL,
        field_suggestions: bool = False,
        gzip: bool = True,
        version: str = HASURA_VERSION,
        rest_endpoints: Sequence[Mapping[str, Any]] | None = None,
        query_collections: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.admin_secret = admin_secret
        self.unauthorized_role = unauthorized_role
        self.version = version
        self.gzip = gzip
        self.healthy = True
        self.schema: GraphQLSchema = _build_schema(sdl)
        self.executor = Executor(self.schema, field_suggestions=field_suggestions)
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self.ws = WebSocketDouble(self)
        self.websocket_app: WebSocketApp = self.ws
        if rest_endpoints is None and query_collections is None:
            self.rest = _demo_rest_endpoints()
        else:
            self.rest = RestEndpoints(rest_endpoints or [], query_collections or [])
        self.app = DoubleApp(self)

    @property
    def field_suggestions(self) -> bool:
        return self.executor.field_suggestions

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(record)

    def reset(self) -> None:
        """Forget recorded requests, clear every fault (releasing hung requests) and become healthy again."""
        with self._lock:
            self.requests.clear()
        self.faults.clear()
        self.healthy = True
        self.ws.reset()

    def graphql_requests(self) -> list[RecordedRequest]:
        """Only the ``POST /v1/graphql`` records."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/v1/graphql"]

    def last(self) -> RecordedRequest:
        """The most recent record; raises ``LookupError`` when nothing was received."""
        with self._lock:
            if not self.requests:
                raise LookupError("the Hasura double has not received any request")
            return self.requests[-1]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were recorded (useful while a request hangs)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} requests, got {len(self.requests)}")
            time.sleep(0.005)
