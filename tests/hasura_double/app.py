"""The double's ASGI application: Hasura's HTTP routes (server/src-lib/Hasura/Server/App.hs) plus the fault switches.

Every HTTP request is read completely and recorded before anything else happens. ``POST /v1/graphql``
rewrites every error to HTTP 200 (``allMod200``) while ``/v1alpha1/graphql`` and the non-GraphQL APIs keep
the real status. Success responses carry ``x-request-id`` (the request's own, else a fresh uuid4: ``getRequestId``
in server/src-lib/Hasura/Server/Types.hs) and
are gzip-compressed when the client accepts ``gzip`` (``Hasura.Server.Compression``); error responses carry
only ``content-type`` and ``content-length`` (``mkSpockAction`` in App.hs). ``/api/rest/*`` (any method) serves
the RESTified endpoints (``rest.py``). WebSocket scopes go to ``double.websocket_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson

from .auth import ADMIN_ROLE, AuthConfig, resolve_session
from .connection import ConnectionControl, wait_for_disconnect
from .errors import HasuraError, api_error_body, graphql_error_body
from .execution import PERSISTED_QUERY_NOT_SUPPORTED, GraphQLRequest, decode_graphql_body
from .faults import FaultPlan
from .records import RecordedRequest
from .rest import ENDPOINT_METHODS, OTHER_STANDARD_METHODS, rest_path

if TYPE_CHECKING:
    from .double import HasuraDouble

__all__ = ["DoubleApp", "Response"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
NOT_FOUND = HasuraError("resource does not exist", "not-found", status=404)
ADMIN_ONLY_PATHS = ("/v1/metadata", "/v2/query", "/v1/query")
HEALTH_PATHS = ("/healthz", "/hasura/healthz")
GRAPHQL_PATH = "/v1/graphql"
HANG_POLL_SECONDS = 0.02
DROP_SETTLE_SECONDS = 2.0


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _accepts_gzip(headers: list[tuple[str, str]]) -> bool:
    """``getAcceptedCompression``: the literal token ``gzip`` in any ``Accept-Encoding`` header."""
    tokens = [t.strip() for key, value in headers if key == "accept-encoding" for t in value.split(",")]
    return "gzip" in tokens


class DoubleApp:
    """Plain ASGI callable (lifespan, http, websocket) serving one :class:`HasuraDouble`."""

    def __init__(self, double: HasuraDouble) -> None:
        self.double = double

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self.double.websocket_app(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        record = RecordedRequest(scope["method"], scope["path"], scope.get("query_string", b""), headers, bytes(body))
        self.double._record(record)
        path = scope["path"]
        rest = rest_path(scope.get("raw_path") or path)
        plan: FaultPlan | None = None
        if path == GRAPHQL_PATH or rest is not None:
            plan = self.double.faults.take()
        elif path in HEALTH_PATHS:
            plan = self.double.faults.take(health=True)
        if plan is not None:
            record.fault = plan.name
            if not await self._apply_faults(plan, record, receive, send):
                return
        if rest is not None:
            response = self._rest(scope["method"], rest, record)
        else:
            response = self._route(scope["method"], path, record)
        await self._send(response, record, send)

    async def _apply_faults(self, plan: FaultPlan, record: RecordedRequest, receive: Receive, send: Send) -> bool:
        """Run ``plan``; True when the request should then be answered normally."""
        if plan.delay:
            await asyncio.sleep(plan.delay)
        control = ConnectionControl(send)
        if plan.drop:
            await self._drop(control, receive)
            return False
        if plan.hang:
            outcome = await self._hang(plan, control, receive)
            if outcome == "released":
                return True
            if outcome in ("shutdown", "limit"):
                await self._drop(control, receive)
            return False
        if plan.status is not None:
            text = plan.status_body if plan.status_body is not None else _reason(plan.status)
            await self._send(Response(plan.status, text, TEXT_TYPE), record, send)
            return False
        return True

    async def _drop(self, control: ConnectionControl, receive: Receive) -> None:
        """Close the connection, then wait (bounded) until uvicorn has seen it go: returning earlier would
        make uvicorn write its own 500 onto the still-open socket."""
        control.drop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_for_disconnect(receive), DROP_SETTLE_SECONDS)

    async def _hang(self, plan: FaultPlan, control: ConnectionControl, receive: Receive) -> str:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        disconnected = asyncio.ensure_future(wait_for_disconnect(receive))
        deadline = loop.time() + plan.hang_limit
        try:
            with control.on_server_shutdown(stopping.set):
                while True:
                    if self.double.faults.release_generation != plan.release_generation:
                        return "released"
                    if disconnected.done():
                        return "disconnected"
                    if stopping.is_set():
                        return "shutdown"
                    if loop.time() >= deadline:
                        return "limit"
                    await asyncio.wait([disconnected], timeout=HANG_POLL_SECONDS)
        finally:
            disconnected.cancel()

    def _route(self, method: str, path: str, record: RecordedRequest) -> Response:
        if path == GRAPHQL_PATH and method == "POST":
            return self._graphql(record, status_200=True)
        if path == "/v1alpha1/graphql" and method == "POST":
            return self._graphql(record, status_200=False)
        if path == GRAPHQL_PATH and method == "GET":
            return self._persisted_query_get(record)
        if path in HEALTH_PATHS and method == "GET":
            return Response(200, b"OK", TEXT_TYPE) if self.double.healthy else Response(500, b"ERROR", TEXT_TYPE)
        if path == "/v1/version" and method == "GET":
            return Response(200, _json({"version": self.double.version, "server_type": "ce"}))
        if path in ADMIN_ONLY_PATHS and method == "POST":
            return self._admin_api(record)
        if (path == "/console" or path.startswith("/console/")) and method == "GET":
            return Response(200, b"<!DOCTYPE html><title>Hasura Console</title>", "text/html; charset=utf-8")
        return Response(404, _json(api_error_body(NOT_FOUND)))

    def _auth(self, record: RecordedRequest) -> dict[str, str]:
        config = AuthConfig(self.double.admin_secret, self.double.unauthorized_role)
        session = resolve_session(record.headers, config)
        record.session = session
        return session

    def _graphql(self, record: RecordedRequest, *, status_200: bool) -> Response:
        """``/v1/graphql``: auth first, then body, then each (batched) request."""
        try:
            self._auth(record)
            decoded = decode_graphql_body(record.body)
            if isinstance(decoded, list):
                results: list[dict[str, Any]] = []
                for request in decoded:
                    try:
                        results.append(self.double.executor.run(request))
                    except HasuraError as error:
                        results.append(graphql_error_body(error))
                return self._success(record, _json(results))
            return self._success(record, _json(self.double.executor.run(decoded)))
        except HasuraError as error:
            return Response(200 if status_200 else error.status, _json(graphql_error_body(error)))

    def _persisted_query_get(self, record: RecordedRequest) -> Response:
        """CE ``runPersistedQueriesGetHandler`` (server/src-lib/Hasura/App.hs): ``PersistedQueryNotSupported``, 200."""
        try:
            self._auth(record)
            error = PERSISTED_QUERY_NOT_SUPPORTED
        except HasuraError as auth_error:
            error = auth_error
        return Response(200, _json(graphql_error_body(error)))

    def _admin_api(self, record: RecordedRequest) -> Response:
        """``/v1/metadata``, ``/v2/query``, ``/v1/query``: admin only, real statuses."""
        try:
            session = self._auth(record)
            if session.get("x-hasura-role") != ADMIN_ROLE:
                raise HasuraError("restricted access : admin only", "access-denied", status=400)
            try:
                orjson.loads(record.body)
            except orjson.JSONDecodeError:
                raise HasuraError("Error in $: not a valid json value", "invalid-json") from None
        except HasuraError as error:
            return Response(error.status, _json(api_error_body(error)))
        return self._success(record, _json({"message": "success"}))

    def _rest(self, method: str, path: str, record: RecordedRequest) -> Response:
        """``/api/rest/<path>`` (any method): auth, method, endpoint, variables, then the saved operation
        (``rest.py``). Errors keep their status with the ``{"error","path","code"}`` body."""
        try:
            self._auth(record)
            if method not in ENDPOINT_METHODS:
                if method in OTHER_STANDARD_METHODS:
                    raise HasuraError(f"Method {method} not supported.", "bad-request")
                raise HasuraError("Nonstandard method not allowed for REST endpoints", "bad-request")
            endpoints = self.double.rest
            endpoint, bound = endpoints.match(method, path)
            variables = endpoints.variables(
                endpoint, bound, record.query_string, record.header("content-type"), record.body
            )
            result = self.double.executor.run(GraphQLRequest(endpoint.query, variables, None))
        except HasuraError as error:
            return Response(error.status, _json(api_error_body(error)))
        return self._success(record, _json(result["errors"] if "errors" in result else result["data"]))

    def _success(self, record: RecordedRequest, body: bytes) -> Response:
        request_id = record.header("x-request-id") or str(uuid.uuid4())
        record.request_id = request_id
        headers = [("x-request-id", request_id)]
        if self.double.gzip and _accepts_gzip(record.headers):
            body = gzip.compress(body, compresslevel=1, mtime=0)
            headers.append(("content-encoding", "gzip"))
        return Response(200, body, JSON_TYPE, headers)

    async def _send(self, response: Response, record: RecordedRequest, send: Send) -> None:
        headers = [
            *response.headers,
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
        ]
        record.status = response.status
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": response.body, "more_body": False})
