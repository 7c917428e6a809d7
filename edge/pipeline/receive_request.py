"""Stage 1: turn the wire request into a GraphQL request, or refuse it before anything else runs.

Order matters and follows the GraphQL-over-HTTP spec and Apollo's CSRF prevention:
method -> content type (415 for simple types, before reading the body) -> body size (413,
counted while reading) -> JSON (read by ``edge.strict_json``: refused when JSON parsers could
disagree on it, so a POST body is forwarded as the client's bytes) -> its shape -> for GET: CSRF
(a header a cross-site request cannot carry, see ``_receive_get``), then "queries only" (405).
Header-size (431), URL-size (414) and whole-request deadlines (408) are enforced earlier, in
the HTTP server's connection (``edge.http_server.connection``), because they must act before a request
exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson

from edge import strict_json
from edge.context import RequestContext
from edge.errors import (
    BadRequest,
    CSRFHeaderRequired,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from edge.graphql.operation import operation_type
from edge.graphql.persisted import PersistedQueries

__all__ = ["ReceiveRequest"]

# Content types a browser form or a "simple" fetch can send without a CORS preflight.
_SIMPLE_CONTENT_TYPES: Final = frozenset({b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data"})
_JSON_CONTENT_TYPES: Final = frozenset({b"application/json", b"application/graphql-response+json"})
_JSON_CONTENT_TYPE_VALUES: Final = frozenset({b"application/json", b"application/json; charset=utf-8"})
# Non-simple headers that prove a GET did not come from a cross-site form or <img>.
_PREFLIGHT_HEADERS: Final[tuple[bytes, ...]] = (
    b"graphql-require-preflight",
    b"apollo-require-preflight",
    b"x-apollo-operation-name",
)
# Header names a cross-site request may carry without a preflight, so their presence proves nothing
# (Fetch standard: the CORS-safelisted request headers a page may set, the forbidden request headers
# the browser sets itself, Cookie among them, and Authorization, which the browser fills in for
# Basic, Digest or Negotiate credentials it holds). A custom token header with one of these names
# does not lift the CSRF check.
_SIMPLE_REQUEST_HEADERS: Final = frozenset(
    {
        b"accept",
        b"accept-language",
        b"content-language",
        b"content-type",
        b"range",
        b"accept-charset",
        b"accept-encoding",
        b"access-control-request-headers",
        b"access-control-request-method",
        b"authorization",
        b"connection",
        b"content-length",
        b"cookie",
        b"cookie2",
        b"date",
        b"dnt",
        b"expect",
        b"host",
        b"keep-alive",
        b"origin",
        b"referer",
        b"set-cookie",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"user-agent",
        b"via",
    }
)
_BROWSER_SET_PREFIXES: Final = (b"sec-", b"proxy-")
_GET_PARAMS: Final = frozenset({"query", "variables", "operationName", "extensions"})


def _media_type(value: bytes | None) -> bytes | None:
    if value is None:
        return None
    return value.split(b";", 1)[0].strip().lower()


class ReceiveRequest:
    """Fills ``ctx.body``/``ctx.payload``; rejects 405, 413, 415, 400 (JSON/CSRF)."""

    def __init__(
        self,
        *,
        max_body_bytes: int,
        allow_get: bool,
        persisted: PersistedQueries | None = None,
        token_headers: Iterable[bytes] = (),
    ) -> None:
        """``token_headers``: the custom headers the JWT config reads tokens from (lower-case names)."""
        self.max_body_bytes = max_body_bytes
        self.allow_get = allow_get
        self.persisted = persisted
        self.allowed_methods = "GET, POST" if allow_get else "POST"
        # Credential headers only a script can set, and only after a preflight when cross-site.
        self.credential_headers: tuple[bytes, ...] = (b"x-api-key",) + tuple(
            name
            for name in dict.fromkeys(header.lower() for header in token_headers)
            if name not in _SIMPLE_REQUEST_HEADERS and not name.startswith(_BROWSER_SET_PREFIXES)
        )

    async def __call__(self, ctx: RequestContext) -> None:
        """The body is ``ctx.arrived_body`` when the server had it all already, else ``ctx.read_body`` reads it."""
        if ctx.method != "POST":
            if ctx.method == "GET" and self.allow_get:
                await self._receive_get(ctx)
                return
            raise MethodNotAllowed(f"{ctx.method} is not supported on /graphql", allow=self.allowed_methods)
        content_type = ctx.header(b"content-type")
        if content_type not in _JSON_CONTENT_TYPE_VALUES:  # the common spellings, without parsing
            media_type = _media_type(content_type)
            if media_type not in _JSON_CONTENT_TYPES:
                if media_type is None or media_type in _SIMPLE_CONTENT_TYPES:
                    raise UnsupportedMediaType(
                        "Content-Type must be application/json (simple content types are refused)"
                    )
                raise UnsupportedMediaType()
        arrived_body = ctx.arrived_body
        if arrived_body is None:
            read_body = ctx.read_body
            if read_body is None:  # a handler bug, not a client error
                raise RuntimeError("receive_request has neither the body nor a reader for it")
            ctx.body = await read_body(self.max_body_bytes)
        elif len(arrived_body) > self.max_body_bytes:
            raise PayloadTooLarge.over(self.max_body_bytes)
        else:
            ctx.body = arrived_body
        payload = strict_json.loads(ctx.body)  # unambiguous, so the raw body is forwarded as it came
        if self.persisted is None or (type(payload) is dict and "extensions" not in payload):
            ctx.payload, ctx.is_batch = _check_shape(payload)  # nothing persisted to resolve
            return
        resolved = await self._resolve_persisted(payload)
        if resolved is not payload:
            # The query text was filled in (or the extension removed): Hasura gets the full request, as
            # the serialisation of exactly what is analysed (strict_json bounds its depth for orjson).
            ctx.body = orjson.dumps(resolved)
        ctx.payload, ctx.is_batch = _check_shape(resolved)

    async def _resolve_persisted(self, payload: Any) -> Any:
        """Apollo's automatic persisted queries: hash-only requests get their query text back."""
        if self.persisted is None:
            return payload
        if isinstance(payload, dict):
            return await self.persisted.resolve(payload)
        if isinstance(payload, list):
            resolved = [await self.persisted.resolve(item) if isinstance(item, dict) else item for item in payload]
            changed = any(new is not old for new, old in zip(resolved, payload, strict=True))
            return resolved if changed else payload
        return payload

    async def _receive_get(self, ctx: RequestContext) -> None:
        if not self._cannot_be_cross_site(ctx):
            raise CSRFHeaderRequired()
        request = await self._resolve_persisted(_decode_get_parameters(ctx.query_string))
        ctx.payload, ctx.is_batch = _check_shape(request)
        kind = operation_type(request["query"], request.get("operationName"))
        if kind != "query":
            raise MethodNotAllowed(f"{kind or 'this operation'} is not allowed over GET; use POST", allow="POST")
        # Hasura CE serves GraphQL over POST only, so the edge forwards GET queries as POST: the
        # serialisation of exactly what is analysed.
        ctx.body = orjson.dumps(request)

    def _cannot_be_cross_site(self, ctx: RequestContext) -> bool:
        """True when the GET carries a header that a cross-site request could not have carried.

        The CSRF attack on a GET: a page on another origin makes the victim's browser send a query
        (``<img src>``, a form, a fetch in ``no-cors`` mode) that runs with the credentials the browser
        adds by itself, its cookies (a cookie-held JWT) or none (the unauthorized role). Such a request
        can only carry headers of :data:`_SIMPLE_REQUEST_HEADERS`: any other header, set by a script,
        makes the browser ask the edge first (a CORS preflight), which only the allowed origins pass.
        So any of these proves the request is not a forged cross-site one: a preflight header
        (``graphql-require-preflight``...), a non-simple ``Content-Type``, ``Authorization: Bearer``
        (the browser fills in ``Authorization`` itself only for Basic, Digest or Negotiate, never
        Bearer), ``X-API-Key``, or the JWT config's custom header. Clients that authenticate with a
        header (urql's and graphql-request's GET, Apollo's) need nothing more; a GET relying on
        cookies or on no credentials still needs the preflight header.
        """
        authorization = ctx.header(b"authorization")  # first: what most GET clients send
        if authorization is not None and authorization.strip().partition(b" ")[0].lower() == b"bearer":
            return True
        for name in self.credential_headers:
            if ctx.header(name):
                return True
        for name in _PREFLIGHT_HEADERS:
            if ctx.header(name):
                return True
        media_type = _media_type(ctx.header(b"content-type"))
        return media_type is not None and media_type not in _SIMPLE_CONTENT_TYPES


def _decode_get_parameters(query_string: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise BadRequest("The query string is not valid UTF-8") from None
    request: dict[str, Any] = {}
    for name, value in pairs:
        if name not in _GET_PARAMS:
            continue  # unknown parameters (and any credentials put there) are ignored, never read
        if name in request:
            raise BadRequest(f"Query parameter {name!r} given more than once")
        if name in ("variables", "extensions"):
            decoded = strict_json.loads(value, f"Query parameter {name!r}") if value else None
            if decoded is not None:  # Hasura refuses an explicit null (hasura/graphql-engine#10013)
                request[name] = decoded
        else:
            request[name] = value
    if "query" not in request and "extensions" not in request:
        raise BadRequest("GET requests need a 'query' parameter")
    return request


def _check_shape(payload: Any) -> tuple[Any, bool]:
    """Validate the GraphQL-over-HTTP request shape: an object, or a non-empty array of objects."""
    if isinstance(payload, dict):
        _check_operation(payload, "$")
        return payload, False
    if isinstance(payload, list):
        if not payload:
            raise BadRequest("A batched request must contain at least one operation")
        for index, item in enumerate(payload):
            if not isinstance(item, dict):
                raise BadRequest(f"$[{index}] must be a JSON object")
            _check_operation(item, f"$[{index}]")
        return payload, True
    raise BadRequest("The request body must be a JSON object or an array of objects")


def _check_operation(request: dict[str, Any], where: str) -> None:
    if not isinstance(request.get("query"), str):
        raise BadRequest(f"{where}.query must be a string")
    variables = request.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest(f"{where}.variables must be an object")
    name = request.get("operationName")
    if name is not None and not isinstance(name, str):
        raise BadRequest(f"{where}.operationName must be a string")
    extensions = request.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise BadRequest(f"{where}.extensions must be an object")
