"""The actions service's configuration: one typed object from ``ACTIONS_*`` environment variables.

Settings are read once, in ``python -m actions``; nothing reads them at import time. Tests build
``ActionsSettings(database_url=..., webhook_secret=...)`` directly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ActionsSettings"]

# Values that mean "someone copied the example file and forgot to change it".
_PLACEHOLDER_SECRETS = {
    "changeme",
    "change-me",
    "changethis",
    "change_me",
    "secret",
    "placeholder",
    "webhook-secret",
    "webhook_secret",
    "actions-webhook-secret",
    "xxx",
    "todo",
}
_MIN_SECRET_LENGTH = 16
_DRIVER_PREFIX = "postgresql+psycopg://"


class ActionsSettings(BaseSettings):
    """Everything the actions service can be told. Field docs state the default and the unit."""

    model_config = SettingsConfigDict(env_prefix="ACTIONS_", extra="ignore", env_ignore_empty=True)

    # --- Listening -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Interface to bind. Default 127.0.0.1; a container sets 0.0.0.0."""
    port: int = Field(default=8001, ge=1, le=65535)
    """TCP port. Default 8001."""

    # --- Trust -----------------------------------------------------------------------------
    webhook_secret: SecretStr
    """Shared secret Hasura sends as ``X-Hasura-Action-Secret`` (actions) and ``X-Hasura-Webhook-Secret``
    (event triggers). Required, at least 16 characters, never a placeholder. Never logged."""

    # --- Database --------------------------------------------------------------------------
    database_url: str
    """``postgres://``, ``postgresql://`` or ``postgresql+psycopg://`` URL of the application database."""
    db_pool_size: int = Field(default=10, ge=1)
    """Connections kept open in the pool. Default 10."""
    db_max_overflow: int = Field(default=10, ge=0)
    """Extra connections allowed under load. Default 10."""
    db_pool_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for a pooled connection. Default 10."""
    db_connect_timeout: int = Field(default=5, ge=1)
    """Seconds libpq waits for a new connection. Default 5."""

    # --- Requests --------------------------------------------------------------------------
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    """Largest request body, counted while it arrives (413 PAYLOAD_TOO_LARGE above it, whatever
    ``Content-Length`` says). The largest body Hasura sends is a documents_history event: the document's
    old and new rows, each with its whole ``content`` (``text``, no length limit in the schema). Content
    written through the edge comes in a body of at most ``EDGE_MAX_BODY_BYTES`` (1 MiB by default), and
    Hasura's JSON for it is at most three times that long (aeson writes a form feed or backspace as
    ``\\u000c``, six bytes, where a client may write ``\\f``, two). Two such copies plus the rest of the event
    fit in ``6 * EDGE_MAX_BODY_BYTES + 64 KiB``; keep this setting at least that. Default 8 MiB (8388608)."""

    # --- Transient failures ----------------------------------------------------------------
    event_retry_after_seconds: int = Field(default=10, ge=0)
    """``Retry-After`` sent with a 503 on transient failures (database unreachable) of an event-trigger
    route. Hasura keeps retrying while it gets a valid Retry-After, so an outage loses no events. 0 omits
    the header (Hasura then stops after ``retry_conf.num_retries``). Default 10."""
    action_retry_after_seconds: int = Field(default=5, ge=1)
    """``extensions.retryAfterSeconds`` (and ``Retry-After``) of a TRANSIENT_FAILURE on an action route:
    the client's hint for when to send the same request again. Default 5."""

    # --- Payments --------------------------------------------------------------------------
    payment_roles: frozenset[str] = frozenset({"user"})
    """Session roles (``x-hasura-role``) allowed to call processPayment, as a JSON list. Default
    ``["user"]``, matching the action's permissions in actions.yaml; admin impersonation is refused."""
    payment_provider: Literal["simulated"] = "simulated"
    """Which PaymentProvider to use. Only ``simulated`` exists today."""
    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    """Deadline for one provider call; past it the call counts as ProviderTimeout. Default 10 s.
    Keep it well under the action's ``timeout`` in actions.yaml (Hasura default 30 s)."""
    idempotency_claim_lease_seconds: float = Field(default=120.0, gt=0)
    """An ``in_progress`` idempotency claim older than this is presumed abandoned (process crash) and a
    retry with the same key and input may take it over. Must exceed provider_timeout_seconds. Default 120."""
    simulated_decline_suffix: str = ".13"
    """SimulatedProvider declines amounts whose two-decimal form ends with this. Default ``.13``."""
    simulated_timeout_suffix: str = ".42"
    """SimulatedProvider times out for amounts whose two-decimal form ends with this. Default ``.42``."""
    simulated_timeout_amounts: frozenset[Decimal] = frozenset()
    """Extra amounts (JSON list) for which SimulatedProvider times out. Default none."""
    simulated_latency_seconds: float = Field(default=0.0, ge=0)
    """Artificial latency of every SimulatedProvider call. Default 0."""

    @field_validator("database_url")
    @classmethod
    def _use_psycopg_driver(cls, value: str) -> str:
        value = value.strip()
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return _DRIVER_PREFIX + value.removeprefix(prefix)
        if value.startswith(_DRIVER_PREFIX):
            return value
        raise ValueError("must be a postgres://, postgresql:// or postgresql+psycopg:// URL")

    @field_validator("webhook_secret")
    @classmethod
    def _refuse_weak_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret.strip():
            raise ValueError("must not be empty")
        lowered = secret.strip().lower()
        if lowered in _PLACEHOLDER_SECRETS or (lowered.startswith("<") and lowered.endswith(">")):
            raise ValueError(
                "is a placeholder; generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        if len(secret) < _MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {_MIN_SECRET_LENGTH} characters")
        return value
