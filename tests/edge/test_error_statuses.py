"""Status semantics by content negotiation: the edge's 4xx for ``application/graphql-response+json``,
Hasura's 200 and error body for ``application/json``, and ``EDGE_ERROR_STATUSES`` forcing one of them."""

from __future__ import annotations

import json

import httpx
import pytest

from edge.error_statuses import ErrorStatuses, ErrorStatusMode
from edge.errors import (
    BadRequest,
    CSRFHeaderRequired,
    EdgeError,
    InvalidJWT,
    MethodNotAllowed,
    MissingCredentials,
    RateLimited,
    RoleNotAllowed,
    all_error_classes,
)
from edge.graphql.persisted import PersistedQueryHashMismatch, PersistedQueryNotFound
from edge.settings import EdgeSettings
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.tokens import hasura_claims, mint
from tests.test_docs import DOCS, import_every_edge_module

MODERN_TYPE = b"application/graphql-response+json; charset=utf-8"
JSON_TYPE = b"application/json; charset=utf-8"
MODERN_ACCEPT = "application/graphql-response+json, application/json;q=0.9"
QUERY = {"query": "query { users(limit: 1) { id } }"}


def answer(
    error: EdgeError, accept: str | None, mode: ErrorStatusMode = "negotiate"
) -> tuple[int, dict[bytes, bytes], dict[str, object]]:
    request = [(b"accept", accept.encode())] if accept is not None else []
    status, headers, body = ErrorStatuses(mode).answer(error, request)
    assert len({name for name, _ in headers}) == len(headers)
    return status, dict(headers), json.loads(body)


# --- The mapping ------------------------------------------------------------------------------


def test_negotiation_is_the_default() -> None:
    assert EdgeSettings.model_fields["error_statuses"].default == "negotiate"
    assert ErrorStatuses().mode == "negotiate"


def test_docs_errors_gives_every_codes_answer_for_application_json() -> None:
    import_every_edge_module()  # error classes defined anywhere in the package count
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in (DOCS / "errors.md").read_text().splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]
    for cls in all_error_classes():
        if cls is EdgeError:
            continue
        if cls.hasura_status is None:
            expected = f"{cls.status} `{cls.code}`"
        else:
            expected = f"{cls.hasura_status} `{cls.hasura_code or cls.code}`"
        answers = [row[2] for row in rows if row[0] == str(cls.status) and row[1] == f"`{cls.code}`"]
        assert expected in answers, f"{cls.__name__}: docs/errors.md says {answers}, the code answers {expected}"


def test_a_client_of_the_modern_type_gets_the_edges_status_and_body() -> None:
    status, headers, body = answer(InvalidJWT("Could not verify JWT: JWTExpired"), MODERN_ACCEPT)
    assert status == 401
    assert headers[b"content-type"] == MODERN_TYPE
    assert headers[b"www-authenticate"] == b'Bearer realm="hasura-edge"'
    assert headers[b"vary"] == b"Accept"
    assert body == {"errors": [{"message": "Could not verify JWT: JWTExpired", "extensions": {"code": "invalid-jwt"}}]}


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "text/html"])
def test_a_json_client_gets_hasuras_200_and_body(accept: str | None) -> None:
    status, headers, body = answer(InvalidJWT("Could not verify JWT: JWTExpired"), accept)
    assert status == 200
    assert headers[b"content-type"] == JSON_TYPE
    assert b"www-authenticate" not in headers  # a challenge belongs to a 401 only
    assert headers[b"vary"] == b"Accept"
    # encodeGQErr: message, extensions {path, code}.
    assert body == {
        "errors": [{"message": "Could not verify JWT: JWTExpired", "extensions": {"path": "$", "code": "invalid-jwt"}}]
    }


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (BadRequest("The request body must be a JSON object or an array of objects"), "parse-failed", None),
        (
            MissingCredentials(),
            "invalid-headers",
            "Missing 'Authorization' or 'Cookie' header in JWT authentication mode",
        ),
        (RoleNotAllowed(), "access-denied", "Your requested role is not in allowed roles"),
    ],
)
def test_hasuras_code_and_message_replace_the_edges_where_they_differ(
    error: EdgeError, code: str, message: str | None
) -> None:
    edge_status, _, edge_body = answer(error, MODERN_ACCEPT)
    assert edge_status == error.status
    assert edge_body["errors"] == [{"message": error.message, "extensions": {"code": error.code}}]
    status, _, body = answer(error, "application/json")
    assert status == 200
    assert body["errors"] == [{"message": message or error.message, "extensions": {"path": "$", "code": code}}]


@pytest.mark.parametrize(
    ("error", "kept_header"),
    [
        (MethodNotAllowed(allow="POST"), (b"allow", b"POST")),
        (RateLimited(headers=(("Retry-After", "7"),)), (b"retry-after", b"7")),
        (CSRFHeaderRequired(), None),
        (PersistedQueryHashMismatch(), None),
    ],
)
@pytest.mark.parametrize("accept", [None, "application/json", MODERN_ACCEPT])
def test_conditions_hasura_has_no_equivalent_for_keep_their_status(
    error: EdgeError, kept_header: tuple[bytes, bytes] | None, accept: str | None
) -> None:
    status, headers, body = answer(error, accept)
    assert status == error.status
    assert body == {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    if kept_header is not None:
        assert headers[kept_header[0]] == kept_header[1]


@pytest.mark.parametrize(("accept", "content_type"), [("application/json", JSON_TYPE), (MODERN_ACCEPT, MODERN_TYPE)])
def test_apollos_persisted_query_signal_stays_200(accept: str, content_type: bytes) -> None:
    status, headers, body = answer(PersistedQueryNotFound(), accept)
    assert (status, headers[b"content-type"]) == (200, content_type)
    assert headers[b"cache-control"] == b"private, no-cache, must-revalidate"
    assert body["errors"][0]["extensions"] == {"code": "PERSISTED_QUERY_NOT_FOUND"}


@pytest.mark.parametrize("accept", [None, "application/json", MODERN_ACCEPT])
def test_the_hasura_mode_answers_every_client_as_hasura_does(accept: str | None) -> None:
    status, headers, body = answer(InvalidJWT(), accept, mode="hasura")
    assert (status, headers[b"content-type"]) == (200, JSON_TYPE)
    assert b"vary" not in headers  # the answer no longer depends on Accept
    assert body["errors"][0]["extensions"] == {"path": "$", "code": "invalid-jwt"}


@pytest.mark.parametrize(("accept", "content_type"), [(None, JSON_TYPE), (MODERN_ACCEPT, MODERN_TYPE)])
def test_the_edge_mode_keeps_the_edges_statuses_in_the_preferred_media_type(
    accept: str | None, content_type: bytes
) -> None:
    status, headers, body = answer(InvalidJWT(), accept, mode="edge")
    assert (status, headers[b"content-type"]) == (401, content_type)
    assert headers[b"www-authenticate"] == b'Bearer realm="hasura-edge"'
    assert body["errors"][0]["extensions"] == {"code": "invalid-jwt"}


def test_remembered_accept_values_answer_alike_and_stay_bounded() -> None:
    statuses = ErrorStatuses()
    for round_ in range(2):
        for index in range(300):  # more distinct values than are remembered
            legacy = [(b"accept", f"application/json, text/x-{index}".encode())]
            modern = [(b"accept", f"application/graphql-response+json, text/x-{index}".encode())]
            assert statuses.answer(InvalidJWT(), legacy)[0] == 200, (round_, index)
            assert statuses.answer(InvalidJWT(), modern)[0] == 401, (round_, index)
    assert len(statuses._prefers_modern) <= 256


def test_every_accept_line_counts() -> None:
    request = [(b"accept", b"application/json;q=0.5"), (b"accept", b"application/graphql-response+json")]
    status, headers, _ = ErrorStatuses().answer(InvalidJWT(), request)
    assert (status, dict(headers)[b"content-type"]) == (401, MODERN_TYPE)


# --- Through a running edge ------------------------------------------------------------------


def test_an_expired_token_over_the_wire(start_edge: EdgeFactory, hasura: HasuraDouble) -> None:
    edge = start_edge(error_statuses="negotiate")
    token = mint(expires_in=-3600)
    legacy = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})
    modern = httpx.post(
        f"{edge.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}", "Accept": MODERN_ACCEPT}
    )
    assert (legacy.status_code, legacy.headers["content-type"]) == (200, JSON_TYPE.decode())
    assert legacy.json() == {
        "errors": [{"message": "Could not verify JWT: JWTExpired", "extensions": {"path": "$", "code": "invalid-jwt"}}]
    }
    assert "www-authenticate" not in legacy.headers
    assert (modern.status_code, modern.headers["content-type"]) == (401, MODERN_TYPE.decode())
    assert modern.json()["errors"][0]["extensions"] == {"code": "invalid-jwt"}
    assert modern.headers["www-authenticate"].startswith("Bearer")
    for response in (legacy, modern):
        assert response.headers["vary"] == "Accept"
        assert response.headers["x-request-id"]
    assert hasura.graphql_requests() == []


@pytest.mark.parametrize(
    ("request_kwargs", "code"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, "invalid-json"),
        ({"json": {"qeury": "{ users { id } }"}}, "parse-failed"),
        ({"json": {"query": "query {"}}, "validation-failed"),
    ],
    ids=["invalid-json", "wrong-shape", "unparsable-document"],
)
def test_request_errors_over_the_wire(start_edge: EdgeFactory, request_kwargs: dict[str, object], code: str) -> None:
    edge = start_edge(unauthorized_role="anonymous", error_statuses="negotiate")
    legacy = httpx.post(f"{edge.url}/graphql", **request_kwargs)  # type: ignore[arg-type]
    modern_headers = {**request_kwargs.get("headers", {}), "Accept": MODERN_ACCEPT}  # type: ignore[dict-item]
    modern = httpx.post(f"{edge.url}/graphql", **{**request_kwargs, "headers": modern_headers})  # type: ignore[arg-type]
    assert legacy.status_code == 200
    assert legacy.json()["errors"][0]["extensions"] == {"path": "$", "code": code}
    assert modern.status_code == 400
    assert modern.headers["content-type"] == MODERN_TYPE.decode()


def test_missing_credentials_over_the_wire(start_edge: EdgeFactory) -> None:
    edge = start_edge(error_statuses="negotiate")
    legacy = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Accept": "application/json"})
    modern = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Accept": MODERN_ACCEPT})
    assert legacy.status_code == 200
    assert legacy.json() == {
        "errors": [
            {
                "message": "Missing 'Authorization' or 'Cookie' header in JWT authentication mode",
                "extensions": {"path": "$", "code": "invalid-headers"},
            }
        ]
    }
    assert modern.status_code == 401
    assert modern.json()["errors"][0]["extensions"] == {"code": "access-denied"}


def test_a_role_not_allowed_over_the_wire(start_edge: EdgeFactory) -> None:
    edge = start_edge(error_statuses="negotiate")
    headers = {"Authorization": f"Bearer {mint(hasura_claims(allowed_roles=['user']))}", "x-hasura-role": "admin"}
    legacy = httpx.post(f"{edge.url}/graphql", json=QUERY, headers=headers)
    modern = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={**headers, "Accept": MODERN_ACCEPT})
    assert legacy.status_code == 200
    assert legacy.json()["errors"][0]["extensions"] == {"path": "$", "code": "access-denied"}
    assert modern.status_code == 403


def test_kept_statuses_over_the_wire(start_edge: EdgeFactory) -> None:
    edge = start_edge(
        error_statuses="negotiate",
        unauthorized_role="anonymous",
        max_body_bytes=1024,
        plans={"default": {"rate": {"requests_per_second": 0.01, "burst": 1}}},
    )
    assert httpx.post(f"{edge.url}/graphql", json=QUERY).status_code == 200
    limited = httpx.post(f"{edge.url}/graphql", json=QUERY)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["errors"][0]["extensions"] == {"code": "rate-limited"}
    unsupported = httpx.post(f"{edge.url}/graphql", content=b"query=x", headers={"Content-Type": "text/plain"})
    assert unsupported.status_code == 415
    assert httpx.put(f"{edge.url}/graphql", json=QUERY).status_code == 405
    too_large = httpx.post(f"{edge.url}/graphql", json={"query": "{ users { id } }", "pad": "x" * 2048})
    assert too_large.status_code == 413
    assert too_large.headers["connection"] == "close"


@pytest.mark.parametrize(("mode", "status"), [("hasura", 200), ("edge", 401)])
def test_the_setting_forces_one_semantics_over_the_wire(start_edge: EdgeFactory, mode: str, status: int) -> None:
    edge = start_edge(error_statuses=mode)
    for accept in ("application/json", MODERN_ACCEPT):
        response = httpx.post(
            f"{edge.url}/graphql", json=QUERY, headers={"Authorization": "Bearer x", "Accept": accept}
        )
        assert response.status_code == status, accept
