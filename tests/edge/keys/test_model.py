"""ApiKey.usable and the rules for new keys (pure: no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from edge.errors import AuthenticationError, EdgeError, ServiceUnavailable
from edge.keys import (
    ApiKey,
    ApiKeyStoreUnavailable,
    ApiKeyValidationError,
    ExpiredApiKey,
    InvalidApiKey,
    RevokedApiKey,
    UnknownPlan,
)
from edge.keys.model import (
    validate_expires_at,
    validate_owner,
    validate_plan,
    validate_role,
    validate_session_variables,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def api_key(**fields: object) -> ApiKey:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "key_id": "abcdefgh23",
        "owner": "acme",
        "plan": "free",
        "role": "user",
        "session_variables": {"x-hasura-org-id": "42"},
        "created_at": NOW - timedelta(days=1),
        "expires_at": None,
        "revoked_at": None,
        "last_rotated_at": None,
    }
    values.update(fields)
    return ApiKey(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "usable", "status"),
    [
        ({}, True, "active"),
        ({"expires_at": NOW + timedelta(seconds=1)}, True, "active"),
        ({"expires_at": NOW}, False, "expired"),
        ({"expires_at": NOW - timedelta(seconds=1)}, False, "expired"),
        ({"revoked_at": NOW - timedelta(days=1)}, False, "revoked"),
        ({"revoked_at": NOW, "expires_at": NOW - timedelta(days=1)}, False, "revoked"),
        ({"last_rotated_at": NOW, "expires_at": NOW + timedelta(hours=24)}, True, "rotated"),
    ],
)
def test_usable_and_status(fields: dict[str, object], usable: bool, status: str) -> None:
    key = api_key(**fields)
    assert key.usable(NOW) is usable
    assert key.status(NOW) == status


def test_session_variables_of_a_key_are_read_only() -> None:
    source = {"x-hasura-org-id": "42"}
    key = api_key(session_variables=source)
    source["x-hasura-org-id"] = "666"
    assert key.session_variables == {"x-hasura-org-id": "42"}
    with pytest.raises(TypeError):
        key.session_variables["x-hasura-org-id"] = "7"  # type: ignore[index]
    assert hash(key) == hash(api_key(id=key.id, session_variables={}))


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (InvalidApiKey, 401, "invalid-api-key"),
        (RevokedApiKey, 401, "api-key-revoked"),
        (ExpiredApiKey, 401, "api-key-expired"),
        (ApiKeyStoreUnavailable, 503, "api-key-store-unavailable"),
    ],
)
def test_error_classes_carry_status_and_code(cls: type[EdgeError], status: int, code: str) -> None:
    error = cls()
    assert (error.status, error.code) == (status, code)
    assert issubclass(cls, AuthenticationError if status == 401 else ServiceUnavailable)
    if status == 401:
        assert ("www-authenticate", 'Bearer realm="hasura-edge"') in [
            (name.decode(), value.decode()) for name, value in error.response_headers()
        ]


def test_unknown_plan_names_the_plan_and_the_known_ones() -> None:
    with pytest.raises(UnknownPlan, match=r"unknown plan 'gold' \(known plans: free, partner\)"):
        validate_plan("gold", {"partner", "free"})
    assert validate_plan("free", {"free"}) == "free"


@pytest.mark.parametrize("role", ["admin", "Admin", "ADMIN"])
def test_admin_role_is_refused_in_any_case(role: str) -> None:
    with pytest.raises(ApiKeyValidationError, match="'admin' is not allowed"):
        validate_role(role)


@pytest.mark.parametrize("role", ["", " user", "user\n", "a b", "x" * 65, "rôle", "admin "])
def test_malformed_roles_are_refused(role: str) -> None:
    with pytest.raises(ApiKeyValidationError):
        validate_role(role)


@pytest.mark.parametrize("role", [None, "user", "org_manager", "read-only", "Editor2"])
def test_plain_roles_are_accepted(role: str | None) -> None:
    assert validate_role(role) == role


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"X-Hasura-Org-Id": "1"}, "lower-case"),
        ({"org-id": "1"}, "starting with 'x-hasura-'"),
        ({"x-hasura-": "1"}, "lower-case"),
        ({"x-hasura-org_id": "1"}, "lower-case"),
        ({"x-hasura-role": "admin"}, "reserved"),
        ({"x-hasura-admin-secret": "s"}, "reserved"),
        ({"x-hasura-access-key": "s"}, "reserved"),
        ({"x-hasura-use-backend-only-permissions": "true"}, "reserved"),
        ({"x-hasura-org-id": 42}, "string value"),
        ({"x-hasura-org-id": None}, "string value"),
        ({"x-hasura-org-id": "1\r\nx-hasura-role: admin"}, "control characters"),
        ({"x-hasura-org-id": "x" * 1025}, "at most 1024"),
        ({f"x-hasura-v{i}": "1" for i in range(33)}, "at most 32"),
    ],
)
def test_bad_session_variables_are_refused(variables: dict[str, object], message: str) -> None:
    with pytest.raises(ApiKeyValidationError, match=message):
        validate_session_variables(variables)


def test_good_session_variables_are_kept() -> None:
    variables = {"x-hasura-org-id": "42", "x-hasura-user-id": "", "x-hasura-tier-2": "gold"}
    assert validate_session_variables(variables) == variables
    assert validate_session_variables(None) == {}


@pytest.mark.parametrize("owner", ["", "   ", "a\nb", "x" * 201])
def test_bad_owners_are_refused(owner: str) -> None:
    with pytest.raises(ApiKeyValidationError, match="owner"):
        validate_owner(owner)


def test_owner_is_trimmed() -> None:
    assert validate_owner("  acme corp ") == "acme corp"


def test_expiry_must_be_aware_and_in_the_future() -> None:
    assert validate_expires_at(None, NOW) is None
    assert validate_expires_at(NOW + timedelta(days=30), NOW) == NOW + timedelta(days=30)
    with pytest.raises(ApiKeyValidationError, match="timezone-aware"):
        validate_expires_at(datetime(2030, 1, 1), NOW)
    with pytest.raises(ApiKeyValidationError, match="future"):
        validate_expires_at(NOW, NOW)
