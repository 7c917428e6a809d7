"""Errors of the API-key subsystem.

Answered to clients (subclasses of the edge's error tree, mapped to HTTP at the usual boundary)::

    AuthenticationError (edge.errors)          401
    ├── InvalidApiKey                          401 invalid-api-key
    ├── RevokedApiKey                          401 api-key-revoked
    └── ExpiredApiKey                          401 api-key-expired
    ServiceUnavailable (edge.errors)           503
    └── ApiKeyStoreUnavailable                 503 api-key-store-unavailable

Raised to administrators only (the repository and the CLI; never reach an HTTP client)::

    ValueError
    └── ApiKeyValidationError                  a field of a new key is refused (the message says which and why)
        └── UnknownPlan                        the plan is not one of the configured plans (named in the message)
    LookupError
    └── ApiKeyNotFound                         no key with that key id

Messages never contain a presented key, a secret or a hash.
"""

from __future__ import annotations

from edge.errors import AuthenticationError, ServiceUnavailable

__all__ = [
    "ApiKeyNotFound",
    "ApiKeyStoreUnavailable",
    "ApiKeyValidationError",
    "ExpiredApiKey",
    "InvalidApiKey",
    "RevokedApiKey",
    "UnknownPlan",
]


class InvalidApiKey(AuthenticationError):
    """The presented key is malformed, unknown, or its secret does not match."""

    code = "invalid-api-key"
    default_message = "Invalid API key"


class RevokedApiKey(AuthenticationError):
    """The key (with the right secret) has been revoked."""

    code = "api-key-revoked"
    default_message = "The API key has been revoked"


class ExpiredApiKey(AuthenticationError):
    """The key (with the right secret) is past its expiry, including the end of a rotation's grace period."""

    code = "api-key-expired"
    default_message = "The API key has expired"


class ApiKeyStoreUnavailable(ServiceUnavailable):
    """The key could not be looked up: the database is unreachable, failed, or did not answer in time."""

    code = "api-key-store-unavailable"
    default_message = "API keys cannot be verified right now; retry later"


class ApiKeyValidationError(ValueError):
    """A field of a key to create (or rotate) is refused; the message names the field and the rule."""


class UnknownPlan(ApiKeyValidationError):
    """The plan is not among the configured plan names."""

    def __init__(self, plan: str, known_plans: list[str]) -> None:
        self.plan = plan
        known = ", ".join(known_plans) if known_plans else "none configured"
        super().__init__(f"unknown plan {plan!r} (known plans: {known})")


class ApiKeyNotFound(LookupError):
    """No key has this key id."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"no API key with key id {key_id!r}")
