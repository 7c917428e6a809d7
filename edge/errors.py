"""Every error the edge answers with, as one tree mapped to HTTP at one boundary.

Each class carries its HTTP ``status`` and a stable ``code`` (``extensions.code`` in the
GraphQL-shaped body). Where Hasura has a code for the same situation the edge reuses it, so
clients that already branch on Hasura's codes keep working; the rest are edge codes.
``docs/errors.md`` lists them all, and a test keeps that page and this module in step.

    EdgeError
    ├── BadRequest                400 bad-request
    │   ├── InvalidJSON           400 invalid-json
    │   │   ├── DuplicateJSONKey      400 duplicate-json-key
    │   │   ├── JSONTooDeep           400 json-too-deep
    │   │   └── JSONNumberOutOfRange  400 json-number-out-of-range
    │   └── CSRFHeaderRequired    400 csrf-header-required
    ├── AuthenticationError       401 (WWW-Authenticate: Bearer)
    │   ├── MissingCredentials    401 access-denied
    │   ├── InvalidAuthHeader     401 invalid-headers
    │   ├── InvalidJWT            401 invalid-jwt
    │   ├── InvalidJWTClaims      401 jwt-invalid-claims
    │   └── MissingRoleClaims     401 jwt-missing-role-claims
    ├── RoleNotAllowed            403 access-denied
    │   └── RoleNotInPlan         403 role-not-in-plan
    ├── NotFound                  404 not-found
    ├── MethodNotAllowed          405 method-not-allowed (Allow: ...)
    ├── RequestTimeout            408 request-timeout
    ├── PayloadTooLarge           413 payload-too-large
    ├── URITooLong                414 uri-too-long
    ├── UnsupportedMediaType      415 unsupported-media-type
    ├── ExpectationFailed         417 expectation-failed
    ├── TooManyRequests           429 (Retry-After, RateLimit-*)
    │   ├── RateLimited           429 rate-limited
    │   ├── QuotaExceeded         429 quota-exceeded
    │   └── CostBudgetExceeded    429 cost-budget-exceeded
    ├── HeadersTooLarge           431 headers-too-large
    ├── UpstreamUnavailable       502 upstream-unavailable
    ├── ServiceUnavailable        503 service-unavailable
    │   └── LimiterUnavailable    503 limiter-unavailable
    └── UpstreamTimeout           504 upstream-timeout

Messages never contain a token, key or secret: they are written for the client to read.

A client that accepts only ``application/json`` (every Hasura client) is answered with Hasura's
semantics instead (``edge/error_statuses.py``): Hasura's ``/v1/graphql`` sends every error it produces
with HTTP 200 (``allMod200`` in ``server/src-lib/Hasura/Server/App.hs``). ``hasura_status`` is the
status such a client gets (None: the condition has no Hasura equivalent and keeps ``status``), and
``hasura_code``/``hasura_message`` replace ``code``/``message`` where Hasura reports the same condition
in other words.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "CSRFHeaderRequired",
    "EdgeError",
    "ExpectationFailed",
    "HeadersTooLarge",
    "InvalidAuthHeader",
    "InternalError",
    "InvalidJSON",
    "InvalidJWT",
    "InvalidJWTClaims",
    "JSONNumberOutOfRange",
    "JSONTooDeep",
    "MethodNotAllowed",
    "MissingCredentials",
    "MissingRoleClaims",
    "NotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "RoleNotAllowed",
    "QuotaExceeded",
    "RateLimited",
    "CostBudgetExceeded",
    "DuplicateJSONKey",
    "LimiterUnavailable",
    "RoleNotInPlan",
    "ServiceUnavailable",
    "TooManyRequests",
    "UnsupportedMediaType",
    "UpstreamTimeout",
    "URITooLong",
    "UpstreamUnavailable",
    "all_error_classes",
    "graphql_error_body",
    "hasura_error_body",
]


class EdgeError(Exception):
    """Base class: an error answered by the edge itself, never forwarded to Hasura."""

    status: int = 500
    code: str = "unexpected"
    default_message: str = "Unexpected error"
    hasura_status: int | None = None
    """The status for a client with Hasura's semantics: 200 where Hasura answers the condition with its
    error body, None where Hasura has no equivalent (the edge's ``status`` is kept)."""
    hasura_code: str | None = None
    """Hasura's ``extensions.code`` for the condition where it differs from ``code``."""
    hasura_message: str | None = None
    """Hasura's message for the condition where a client may match on it and the edge's differs."""

    def __init__(self, message: str | None = None, *, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.message = message or self.default_message
        self.headers: tuple[tuple[str, str], ...] = tuple(headers)
        super().__init__(self.message)

    def body(self) -> bytes:
        return graphql_error_body(self.message, self.code)

    def hasura_body(self) -> bytes:
        """The body Hasura's ``/v1/graphql`` sends for the condition: ``encodeGQErr``, path ``$``."""
        return hasura_error_body(self.hasura_message or self.message, self.hasura_code or self.code)

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers]


class InternalError(EdgeError):
    """A bug in the edge (never the client's fault): logged with its traceback, answered in GraphQL shape."""

    status = 500
    code = "internal-error"
    default_message = "The edge could not handle this request"


class BadRequest(EdgeError):
    """The request is not a GraphQL-over-HTTP request the edge can forward."""

    status = 400
    code = "bad-request"
    default_message = "Bad request"
    hasura_status: int | None = 200
    # A body Hasura cannot decode as a GraphQL request fails in aeson's FromJSON: ``parse-failed``
    # (``decodeValue`` in Hasura/Base/Error.hs, called by ``parseBody`` in App.hs).
    hasura_code: str | None = "parse-failed"


class InvalidJSON(BadRequest):
    """The body (or the GET parameters) is not valid JSON of the expected shape."""

    code = "invalid-json"
    default_message = "The request body is not valid JSON"
    hasura_code: str | None = "invalid-json"  # parseBody in App.hs: ``throw400 InvalidJSON``


class DuplicateJSONKey(InvalidJSON):
    """A JSON object repeats a key: parsers disagree on which value counts, so the edge reads none."""

    code = "duplicate-json-key"
    default_message = "The request body repeats a key in a JSON object; keys must be unique"
    hasura_code: str | None = None  # Hasura reads such JSON: the condition is the edge's own


class JSONTooDeep(InvalidJSON):
    """Objects and arrays nested deeper than ``edge.strict_json.MAX_DEPTH``."""

    code = "json-too-deep"
    default_message = "The request body nests JSON objects and arrays too deeply"
    hasura_code: str | None = None  # Hasura reads such JSON: the condition is the edge's own


class JSONNumberOutOfRange(InvalidJSON):
    """A JSON number the edge cannot read exactly (an integer outside 64 bits, more digits than a double)."""

    code = "json-number-out-of-range"
    default_message = "The request body has a number the edge cannot read exactly; send such values as strings"
    hasura_code: str | None = None  # Hasura reads such JSON: the condition is the edge's own


class CSRFHeaderRequired(BadRequest):
    """A GET request carried no header that proves it is not a cross-site form or ``<img>``
    (``edge.pipeline.receive_request``: a preflight header, or a credential header only scripts set)."""

    code = "csrf-header-required"
    default_message = (
        "GET requests without an 'Authorization: Bearer' or 'X-API-Key' header must carry a non-empty "
        "'graphql-require-preflight', 'apollo-require-preflight' or 'x-apollo-operation-name' header "
        "(CSRF protection)"
    )
    # Hasura's /v1/graphql runs no query sent with GET: no equivalent, the 400 stays.
    hasura_status: int | None = None
    hasura_code: str | None = None


class AuthenticationError(EdgeError):
    """The request's credentials are missing or cannot be trusted."""

    status = 401
    code = "access-denied"
    default_message = "Authentication failed"
    hasura_status: int | None = 200

    def __init__(self, message: str | None = None, *, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message, headers=(("WWW-Authenticate", 'Bearer realm="hasura-edge"'), *headers))


class MissingCredentials(AuthenticationError):
    """No credentials, and no unauthorized role is configured."""

    code = "access-denied"
    default_message = "Missing credentials: send 'Authorization: Bearer <JWT>'"
    # Hasura in JWT mode without a token and without an unauthorized role (``withoutAuthZ`` in
    # server/src-lib/Hasura/Server/Auth/JWT.hs).
    hasura_code: str | None = "invalid-headers"
    hasura_message: str | None = "Missing 'Authorization' or 'Cookie' header in JWT authentication mode"


class InvalidAuthHeader(AuthenticationError):
    """An ``Authorization`` header that is not exactly ``Bearer <token>``."""

    code = "invalid-headers"
    default_message = "Malformed Authorization header"


class InvalidJWT(AuthenticationError):
    """Signature, algorithm, key or time-claim verification failed."""

    code = "invalid-jwt"
    default_message = "Could not verify JWT"


class InvalidJWTClaims(AuthenticationError):
    """The Hasura claims are present but malformed."""

    code = "jwt-invalid-claims"
    default_message = "Invalid Hasura claims in JWT"


class MissingRoleClaims(AuthenticationError):
    """``x-hasura-allowed-roles`` or ``x-hasura-default-role`` is missing."""

    code = "jwt-missing-role-claims"
    default_message = "JWT claims do not contain the Hasura role claims"


class RoleNotAllowed(EdgeError):
    """The requested (or default) role is not among the token's allowed roles."""

    status = 403
    code = "access-denied"
    default_message = "Your requested role is not in allowed roles"
    hasura_status: int | None = 200


class RoleNotInPlan(RoleNotAllowed):
    """The identity's role is not among the roles its usage plan may use."""

    code = "role-not-in-plan"
    default_message = "Your role is not allowed on your usage plan"


class NotFound(EdgeError):
    status = 404
    code = "not-found"
    default_message = "resource does not exist"


class MethodNotAllowed(EdgeError):
    """Wrong method, or a mutation sent with GET (GraphQL-over-HTTP: 405 with ``Allow``)."""

    status = 405
    code = "method-not-allowed"
    default_message = "Method not allowed"

    def __init__(self, message: str | None = None, *, allow: str = "GET, POST") -> None:
        super().__init__(message, headers=(("Allow", allow),))


class RequestTimeout(EdgeError):
    status = 408
    code = "request-timeout"
    default_message = "The request was not received in time"


class PayloadTooLarge(EdgeError):
    status = 413
    code = "payload-too-large"
    default_message = "Request body too large"

    @classmethod
    def over(cls, limit: int) -> PayloadTooLarge:
        return cls(f"Request body exceeds {limit} bytes")


class URITooLong(EdgeError):
    status = 414
    code = "uri-too-long"
    default_message = "Request target too long"


class ExpectationFailed(EdgeError):
    """An ``Expect`` header other than ``100-continue`` (RFC 9110 §10.1.1)."""

    status = 417
    code = "expectation-failed"
    default_message = "Only 'Expect: 100-continue' is supported"


class UnsupportedMediaType(EdgeError):
    status = 415
    code = "unsupported-media-type"
    default_message = "Content-Type must be application/json"


class TooManyRequests(EdgeError):
    """A usage-plan limit refused the request; headers carry ``Retry-After`` and ``RateLimit-*``."""

    status = 429
    code = "too-many-requests"
    default_message = "Too many requests"


class RateLimited(TooManyRequests):
    code = "rate-limited"
    default_message = "Rate limit exceeded"


class QuotaExceeded(TooManyRequests):
    code = "quota-exceeded"
    default_message = "Quota exceeded for the current period"


class CostBudgetExceeded(TooManyRequests):
    code = "cost-budget-exceeded"
    default_message = "Cost budget exceeded"


class HeadersTooLarge(EdgeError):
    status = 431
    code = "headers-too-large"
    default_message = "Request header fields too large"


class UpstreamUnavailable(EdgeError):
    """Hasura could not be reached, or answered with something that is not HTTP."""

    status = 502
    code = "upstream-unavailable"
    default_message = "The GraphQL engine is unavailable"


class ServiceUnavailable(EdgeError):
    status = 503
    code = "service-unavailable"
    default_message = "Service unavailable"


class LimiterUnavailable(ServiceUnavailable):
    """The shared limit store is unreachable and ``EDGE_LIMITER_FAILURE_MODE`` is ``closed``."""

    code = "limiter-unavailable"
    default_message = "Rate limiting is unavailable; try again shortly"


class UpstreamTimeout(EdgeError):
    status = 504
    code = "upstream-timeout"
    default_message = "The GraphQL engine did not answer in time"


def graphql_error_body(message: str, code: str) -> bytes:
    """The GraphQL-shaped error body: ``{"errors":[{"message":...,"extensions":{"code":...}}]}``."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


def hasura_error_body(message: str, code: str) -> bytes:
    """Hasura's GraphQL error body (``encodeGQErr``/``encodeGQLErr`` in Hasura/Base/Error.hs): the code
    with the JSON path of the error in the request, ``$`` for the request as a whole."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"path": "$", "code": code}}]})


def all_error_classes() -> list[type[EdgeError]]:
    """Every concrete error class, for the docs test."""
    found: list[type[EdgeError]] = []
    pending: list[type[EdgeError]] = [EdgeError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
