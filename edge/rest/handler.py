"""``/api/rest/<url>``: Hasura's RESTified endpoints through the same pipeline as ``/graphql``.

A call becomes the GraphQL request Hasura would run for it (the endpoint's saved operation and the
variables of ``edge.rest.variables``), and that request goes through the stages of the GraphQL handler,
the same objects: authentication, plan and role, analysis (depth, cost and the plan's limits), rate,
quota and cost budget under the same limit key (one rate limit for an API key's REST and GraphQL calls),
the trust boundary, the response cache (GET only), and the finishing stage (refund, ``extensions.cost``).
Only receiving the request and the proxy call are REST's own:

1. the body (``EDGE_MAX_BODY_BYTES``; JSON read by ``edge.strict_json``, refused when parsers could
   disagree on it; a body must be a JSON object sent as ``application/json``);
2. authenticate, identify plan (as ``/graphql``; Hasura too authenticates before anything else);
3. the method (one of Hasura's five, else Hasura's 400), the endpoint (Hasura's 404, 405 with ``Allow``,
   500 for two matching endpoints), its variables resolved and validated (400), and the cross-site
   check for a mutation reached by a request a browser sends without asking (GET, or POST with no JSON
   body): a credential header or a preflight header is required, as for a GET on ``/graphql``;
4. analyse, limit, inject session (as ``/graphql``);
5. the response cache (GET calls of ``@cached`` or rule-matched queries), else Hasura's
   ``/api/rest/<url>``: the method, the path's segments percent-encoded again, the query-string
   parameters and body keys that decided the variables, and the session the edge injected (inside a
   CLIENT span when tracing is on);
6. finish (as ``/graphql``), then back to REST's shape.

Hasura answers a REST call with the operation's ``data`` alone (``encodeHTTPResp`` in
``server/src-lib/Hasura/GraphQL/Transport/HTTP/Protocol.hs``), or its errors. For the shared stages the
answer is seen as ``{"data": ...}`` (or ``{"errors": [...]}``), which is what the response cache stores,
so that a REST call and the same query on ``/graphql`` share an entry; the client gets REST's shape
back, with ``extensions`` (the cost) added next to the root fields when the plan has a cost budget and
no root field is called ``extensions``. Cached answers carry an ``ETag``; a GET whose ``If-None-Match``
names it is answered 304 without a body.

Errors the edge answers itself have the edge's status and GraphQL-shaped body (``docs/errors.md``),
whatever the client accepts; the endpoint errors Hasura gives (404, 405, the unsupported method, 500)
have Hasura's status and its ``{"error", "path", "code"}`` body.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote_to_bytes

import orjson
from graphql import GraphQLSchema

from edge import strict_json
from edge.asgi import ClientDisconnected, Receive, Scope, Send, asgi_client, read_body, send_response
from edge.cache import ResponseCache
from edge.context import RequestContext
from edge.errors import (
    BadRequest,
    CSRFHeaderRequired,
    EdgeError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from edge.graphql.schema_source import SchemaSource
from edge.graphql_http import GraphQLHTTPHandler, end_span
from edge.http.cors import CorsPolicy
from edge.http.request_id import choose_request_id
from edge.http.response_headers import MIN_COMPRESS_BYTES, compress_if_worthwhile
from edge.pipeline.authenticate import Authenticate
from edge.pipeline.cached_proxy import CachedProxy
from edge.pipeline.order import Stage, Stages
from edge.pipeline.proxy import Proxy
from edge.pipeline.receive_request import ReceiveRequest
from edge.pipeline.respond import REPLACED_UPSTREAM_HEADERS
from edge.pipeline.traced_proxy import TracedProxy
from edge.rest.call import RestCall
from edge.rest.endpoints import METHODS, RestEndpoints
from edge.rest.variables import resolve_arguments, validate_variables
from edge.upstream.base import Upstream, UpstreamResponse

__all__ = [
    "REST_PREFIX",
    "RestCall",
    "RestEndpointError",
    "RestEndpointNotFound",
    "RestHandler",
    "RestMethodNotAllowed",
    "RestMethodNotSupported",
    "rest_stages",
]

log = logging.getLogger("edge.rest")

REST_PREFIX: Final = "/api/rest/"
_CLOSE_AFTER: Final = (PayloadTooLarge, RequestTimeout)
_JSON: Final = (b"content-type", b"application/json; charset=utf-8")
_JSON_TYPES: Final = frozenset({b"application/json"})
_METHODS: Final = ", ".join(METHODS).encode("ascii")
_QUERY_SEPARATORS: Final = re.compile(r"[&;]")  # WAI's parseQuery separates parameters with either
_STANDARD_METHODS: Final = frozenset({"HEAD", "TRACE", "CONNECT", "OPTIONS"})
_PREFLIGHT_HEADERS: Final = (b"graphql-require-preflight", b"apollo-require-preflight", b"x-apollo-operation-name")


def _hasura_rest_body(message: str, code: str) -> bytes:
    """Hasura's error body on its REST routes (``QErr``'s ``ToJSON`` in ``Hasura/Base/Error.hs``)."""
    return orjson.dumps({"error": message, "path": "$", "code": code})


class RestEndpointNotFound(NotFound):
    """No endpoint has this path (Hasura: ``throw404 "Endpoint not found"``)."""

    default_message = "Endpoint not found"

    def body(self) -> bytes:
        return _hasura_rest_body(self.message, self.code)


class RestMethodNotAllowed(MethodNotAllowed):
    """The path has endpoints, none for this method (Hasura: ``throw405 "Allowed methods: ..."``)."""

    def body(self) -> bytes:
        return _hasura_rest_body(self.message, self.code)


class RestMethodNotSupported(BadRequest):
    """A method Hasura's endpoints never serve (HEAD, TRACE...): Hasura's 400."""

    def body(self) -> bytes:
        return _hasura_rest_body(self.message, self.code)


class RestEndpointError(InternalError):
    """Two endpoints match the call (Hasura: ``throw500 "Multiple endpoints match request"``)."""

    code = "unexpected"
    default_message = "Multiple endpoints match request"

    def body(self) -> bytes:
        return _hasura_rest_body(self.message, self.code)


class _RestUpstream:
    """What the proxy stage calls, for one REST call: Hasura's endpoint with the method, target and body the
    edge decided (whatever ``ctx.body`` says: the cache stage may rewrite that one for ``/v1/graphql``).
    A 200 is handed back as a GraphQL response (``{"data": ...}``) for the stages after the proxy."""

    def __init__(self, upstream: Upstream, method: str, target: str, body: bytes | None) -> None:
        self.upstream = upstream
        self.method = method
        self.target = target
        self.body = body

    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        response = await self.upstream.request(
            self.method, self.target, self.body, headers, timeout=timeout, idempotent=idempotent
        )
        return as_graphql_response(response)

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        return await self.upstream.request(method, target, body, headers, timeout=timeout, idempotent=idempotent)

    async def get(self, path: str, *, timeout: float | None = None) -> UpstreamResponse:
        return await self.upstream.get(path, timeout=timeout)

    async def aclose(self) -> None:
        return None


def as_graphql_response(response: UpstreamResponse) -> UpstreamResponse:
    """Hasura's REST answer as the GraphQL response it was made from: a 200 JSON object is the ``data``,
    a 200 JSON array the ``errors``. Anything else is passed as it is."""
    if response.status != 200:
        return response
    body = response.body.lstrip(b" \t\r\n")
    if body.startswith(b"{"):
        return UpstreamResponse(200, response.headers, b'{"data":' + body + b"}")
    if body.startswith(b"["):
        return UpstreamResponse(200, response.headers, b'{"errors":' + body + b"}")
    return response


def as_rest_body(body: bytes) -> bytes:
    """The REST answer of a GraphQL response made by :func:`as_graphql_response` (and maybe finished, or
    from the cache): the ``data`` with the ``extensions`` next to its root fields, or the ``errors``."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(document, dict):
        return body
    if "data" in document and isinstance(document["data"], dict):
        data = document["data"]
        extensions = document.get("extensions")
        if extensions is not None and "extensions" not in data:
            data = {**data, "extensions": extensions}
        return orjson.dumps(data)
    if "errors" in document and isinstance(document["errors"], list):
        return orjson.dumps(document["errors"])
    return body


def etag_of(body: bytes) -> bytes:
    return b'"' + hashlib.sha256(body).hexdigest()[:32].encode("ascii") + b'"'


def _etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 §13.1.2: weak comparison, ``*`` matches any current representation."""
    for candidate in if_none_match.split(b","):
        tag = candidate.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False


def _call(ctx: RequestContext) -> RestCall:
    call = ctx.rest_call
    if call is None:  # a handler bug, not a client error
        raise RuntimeError("a REST stage ran outside a REST call")
    return call


class ReceiveRestCall:
    """REST's receive stage: the body, a JSON object sent as ``application/json`` or empty (413, 415, 400)."""

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    async def __call__(self, ctx: RequestContext) -> None:
        reader = ctx.read_body
        if reader is None:  # a handler bug, not a client error
            raise RuntimeError("a REST call without a body reader")
        raw = await reader(self.max_body_bytes)
        if not raw.strip():
            return
        content_type = ctx.header(b"content-type")
        media_type = content_type.split(b";", 1)[0].strip().lower() if content_type is not None else None
        if media_type not in _JSON_TYPES:
            raise UnsupportedMediaType("A request body must be JSON, sent as Content-Type: application/json")
        payload = strict_json.loads(raw)
        if not isinstance(payload, dict):
            raise BadRequest("The request body must be a JSON object (its keys are the operation's variables)")
        ctx.body = raw
        _call(ctx).body = payload


class ResolveEndpoint:
    """REST's step after identify plan: the method (Hasura's 400), the endpoint (404, 405, 500), its
    variables (400) and the cross-site check for a mutation; fills ``ctx.payload`` for the analysis."""

    def __init__(
        self,
        endpoints: RestEndpoints,
        *,
        credential_headers: Sequence[bytes],
        schema_source: SchemaSource | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.credential_headers = tuple(credential_headers)
        self.schema_source = schema_source

    @property
    def schema(self) -> GraphQLSchema | None:
        info = self.schema_source.schema if self.schema_source is not None else None
        return info.schema if info is not None else None

    def __call__(self, ctx: RequestContext) -> None:
        method = ctx.method
        if method not in METHODS:
            if method in _STANDARD_METHODS:
                raise RestMethodNotSupported(f"Method {method} not supported.")
            raise RestMethodNotSupported("Nonstandard method not allowed for REST endpoints")
        call = _call(ctx)
        # Each segment percent-decoded, empty ones dropped (WAI's path segments and Spock's router), so
        # /api/%72est/... is /api/rest/... here as at Hasura; then the segments after api/rest.
        try:
            path = unquote_to_bytes(call.raw_path).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("The path is not valid UTF-8") from None
        segments = [segment for segment in path.split("/") if segment][2:]
        match = self.endpoints.match(method, segments)
        if match.kind == "not-found":
            raise RestEndpointNotFound()
        if match.kind == "method-not-allowed":
            allowed = ", ".join(match.allowed)
            raise RestMethodNotAllowed(f"Allowed methods: {allowed}", allow=allowed)
        if match.kind == "ambiguous" or match.endpoint is None:
            raise RestEndpointError()
        endpoint = match.endpoint
        try:
            text = ctx.query_string.decode("utf-8")
            query = [
                pair
                for part in _QUERY_SEPARATORS.split(text)
                for pair in parse_qsl(part, keep_blank_values=True, errors="strict")
            ]
        except UnicodeDecodeError:
            raise BadRequest("The query string is not valid UTF-8") from None
        body = call.body
        arguments = resolve_arguments(endpoint, match.values, query, body)
        validate_variables(endpoint, arguments.variables, self.schema)
        if endpoint.operation_type == "mutation" and (method == "GET" or (method == "POST" and body is None)):
            self._check_not_cross_site(ctx)
        ctx.payload = {"query": endpoint.query, "variables": arguments.variables}
        target = REST_PREFIX + "/".join(quote(segment, safe="") for segment in segments)
        query_string = arguments.query_string()
        if query_string:
            target += "?" + query_string
        call.endpoint = endpoint
        call.target = target
        call.forwarded = orjson.dumps(arguments.body) if arguments.body is not None else None

    def _check_not_cross_site(self, ctx: RequestContext) -> None:
        """A mutation reached by a request a page on another origin can make the browser send without asking
        (``<img>``, a form): it needs a header such a request cannot carry (``edge.pipeline.receive_request``)."""
        authorization = ctx.header(b"authorization")
        if authorization is not None and authorization.strip().partition(b" ")[0].lower() == b"bearer":
            return
        for name in (*self.credential_headers, *_PREFLIGHT_HEADERS):
            if ctx.header(name):
                return
        raise CSRFHeaderRequired()


class RestProxy:
    """REST's proxy stage: the call to Hasura's ``/api/rest/...`` (``_RestUpstream``), through the proxy
    stage's own error mapping (502, 503, 504)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def __call__(self, ctx: RequestContext) -> None:
        call = _call(ctx)
        await Proxy(_RestUpstream(self.upstream, ctx.method, call.target, call.forwarded))(ctx)


class RestRespond:
    """REST's respond stage: the answer in REST's shape, with the edge's headers, an ``ETag`` on a cached
    answer (304 for a matching ``If-None-Match`` on a GET), gzip; fills ``ctx.status``."""

    def __init__(self, *, cors: CorsPolicy, security_headers: Sequence[tuple[bytes, bytes]]) -> None:
        self.cors = cors
        self.security_headers = list(security_headers)

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        response = ctx.response
        respond = ctx.respond
        if response is None or respond is None:  # a pipeline bug, not a client error
            raise RuntimeError("respond ran without a response or a responder")
        body = as_rest_body(response.body) if response.status == 200 else response.body
        out = [header for header in response.headers if header[0] not in REPLACED_UPSTREAM_HEADERS]
        out.append((b"x-request-id", ctx.request_id.encode("ascii")))
        if ctx.limit_headers:
            out += ctx.limit_headers
        if ctx.origin is not None:
            out += self.cors.response_headers(ctx.origin)
        out += self.security_headers
        status = response.status
        if ctx.method == "GET" and status == 200 and any(name == b"x-cache" for name, _ in response.headers):
            etag = etag_of(body)
            out.append((b"etag", etag))
            if_none_match = ctx.header(b"if-none-match")
            if if_none_match is not None and _etag_matches(if_none_match, etag):
                ctx.status = 304
                return respond(304, [header for header in out if header[0] not in _NOT_ON_304], b"")
        if len(body) >= MIN_COMPRESS_BYTES:
            body = compress_if_worthwhile(body, out, ctx.header(b"accept-encoding"))
        ctx.status = status
        return respond(status, out, body)


_NOT_ON_304: Final = (b"content-type", b"content-encoding")


def rest_stages(
    graphql: GraphQLHTTPHandler,
    endpoints: RestEndpoints,
    *,
    upstream: Upstream,
    receive: ReceiveRequest,
    response_cache: ResponseCache | None = None,
    schema_source: SchemaSource | None = None,
) -> Stages:
    """REST's variant of the ``/graphql`` declaration (``edge.pipeline.order``): its own receive, endpoint,
    proxy and respond steps around the same authenticate, identify plan, analyse, limit, inject session
    and finish objects, in the same order.

    ``receive``: the ``/graphql`` receive stage, whose body limit and credential headers REST keeps;
    ``response_cache``: serves REST's GET calls when set.
    """
    to_hasura: Callable[[RequestContext], Awaitable[None]] = RestProxy(upstream)
    if graphql.tracing_enabled:
        to_hasura = TracedProxy(to_hasura)
    proxy: Stage = to_hasura
    if response_cache is not None:
        proxy = CachedProxy(response_cache, to_hasura, methods=frozenset({"GET"}))
    return dataclasses.replace(
        graphql.stages,
        receive=ReceiveRestCall(max_body_bytes=receive.max_body_bytes),
        resolve_endpoint=ResolveEndpoint(
            endpoints, credential_headers=receive.credential_headers, schema_source=schema_source
        ),
        proxy=proxy,
        respond=RestRespond(cors=graphql.cors, security_headers=graphql.security_headers),
    )


class RestHandler:
    """Any method on ``/api/rest/...`` (ASGI): runs ``stages`` (:func:`rest_stages`) in their declared
    order, and answers an EdgeError from any of them at one boundary."""

    def __init__(
        self,
        graphql: GraphQLHTTPHandler,
        stages: Stages,
        endpoints: RestEndpoints,
        *,
        authenticate: Authenticate,
        schema_source: SchemaSource | None = None,
    ) -> None:
        """``graphql``: the ``/graphql`` handler, whose CORS policy, tracing and observer REST shares;
        ``authenticate``: its stage (the OpenAPI document says which credentials it takes)."""
        self.graphql = graphql
        self.stages = stages
        self.sequence: tuple[Stage, ...] = stages.sequence()
        self.endpoints = endpoints
        self.authenticate = authenticate
        self.schema_source = schema_source

    @property
    def schema(self) -> GraphQLSchema | None:
        info = self.schema_source.schema if self.schema_source is not None else None
        return info.schema if info is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = bytes(scope.get("raw_path") or scope["path"].encode("utf-8"))
        await self.handle(
            scope["method"],
            raw_path.partition(b"?")[0],
            [(bytes(name), bytes(value)) for name, value in scope["headers"]],
            bytes(scope.get("query_string", b"")),
            asgi_client(scope),
            receive,
            send,
        )

    async def handle(
        self,
        method: str,
        raw_path: bytes,
        headers: list[tuple[bytes, bytes]],
        query_string: bytes,
        client: tuple[str, int] | None,
        receive: Receive,
        send: Send,
    ) -> None:
        started = time.perf_counter()
        graphql = self.graphql
        ctx = RequestContext(
            method=method,
            headers=headers,
            query_string=query_string,
            client=client,
            request_id="",
            read_body=functools.partial(read_body, receive),
            respond=functools.partial(send_response, send),
        )
        ctx.request_id = choose_request_id(ctx.first_values.get(b"x-request-id"))
        ctx.origin = ctx.first_values.get(b"origin")
        ctx.rest_call = RestCall(raw_path)
        if method == "OPTIONS":
            if ctx.header(b"access-control-request-method"):
                # /graphql's preflight, with the methods REST endpoints take instead of GET and POST only.
                status, preflight = graphql.cors.preflight(ctx.origin)
                out = [
                    (name, _METHODS if name == b"access-control-allow-methods" else value) for name, value in preflight
                ]
            else:
                status, out = 204, [(b"allow", _METHODS)]
            out.append((b"x-request-id", ctx.request_id.encode("ascii")))
            await send_response(send, status, out, b"")
            return
        if graphql.tracing_enabled:
            ctx.span = graphql.tracing.start_request(
                headers, request_id=ctx.request_id, method=method, path=REST_PREFIX.rstrip("/")
            )
        try:
            for stage in self.sequence:
                pending = stage(ctx)
                if pending is not None:
                    await pending
        except EdgeError as error:
            await self.send_error(ctx, send, error)
            graphql.finished(ctx, started, error.status, error.code)
            return
        except ClientDisconnected:
            end_span(ctx, 499, "client-disconnected")
            return
        except Exception:
            log.exception("edge_internal_error", extra={"request_id": ctx.request_id})
            await self.send_error(ctx, send, InternalError())
            end_span(ctx, 500, "internal-error")
            return
        except BaseException:
            end_span(ctx, 500, "internal")
            raise
        graphql.finished(ctx, started, ctx.status, None)

    async def send_error(self, ctx: RequestContext, send: Send, error: EdgeError) -> None:
        if error.status >= 500:
            log.warning("edge_error", extra={"request_id": ctx.request_id, "code": error.code})
        out = [(b"x-request-id", ctx.request_id.encode("ascii")), _JSON, *error.response_headers()]
        if isinstance(error, _CLOSE_AFTER):
            out.append((b"connection", b"close"))
        out.extend(self.graphql.cors.response_headers(ctx.origin))
        out.extend(self.graphql.security_headers)
        await send_response(send, error.status, out, error.body())
