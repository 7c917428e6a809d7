"""The edge's configuration: one typed object from ``EDGE_*`` variables and an optional YAML file.

Precedence, highest first: arguments passed to ``EdgeSettings(...)`` (tests), environment
variables (``EDGE_HASURA_URL``...), the YAML file named by ``EDGE_CONFIG`` (keys are the field
names without the prefix), then the defaults below. ``docs/configuration.md`` is the reference;
a test checks that every field here is documented there.

Settings are read once, in ``python -m edge``; nothing reads them at import time.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AnyHttpUrl, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from edge.auth.jwt_config import JWTConfig, parse_jwt_secret
from edge.cache.rules import CacheRule
from edge.error_statuses import ErrorStatusMode
from edge.plans import DEFAULT_PLAN, Plan
from edge.redis_topology import parse_redis_url
from edge.upstream.balancer import parse_targets

__all__ = ["ConfigFileError", "EdgeSettings", "UpstreamKind", "read_config_file"]

UpstreamKind = Literal["lean", "httpx", "httpx2", "httpx-aiohttp"]

# Values that mean "someone copied the example file and forgot to change it".
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "changethis", "secret", "myadminsecretkey"}


class ConfigFileError(ValueError):
    """The ``EDGE_CONFIG`` file cannot be used. The message names the file and, for a syntax error, the line
    and column; it never quotes the file's contents (they may hold secrets)."""


def _refuse_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # PyYAML keeps the last of two equal keys; in a configuration file that hides a mistake.
    seen: set[str] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key_node.value!r} is given twice", key_node.start_mark
                )
            seen.add(key_node.value)
    return loader.construct_mapping(node, deep=True)


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe subset; a mapping with the same key twice is an error."""


_ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _refuse_duplicate_keys)


def read_config_file(path: str) -> dict[str, Any]:
    """The ``EDGE_CONFIG`` file as a mapping of lower-case setting names to values (empty file: ``{}``).

    Raises :class:`ConfigFileError` when it cannot be read, is not YAML, or is not a mapping.
    """
    where = f"EDGE_CONFIG: {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigFileError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        loaded = yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        # Only the problem and its position: str(exc) would print the offending line of the file.
        mark = exc.problem_mark
        position = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigFileError(f"{where}: {position}invalid YAML: {exc.problem or 'syntax error'}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{where}: invalid YAML ({type(exc).__name__})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        kind = "a list" if isinstance(loaded, list) else "a single value"
        raise ConfigFileError(f"{where}: must be a YAML mapping of setting names to values, not {kind}")
    settings: dict[str, Any] = {}
    for key, value in loaded.items():
        name = str(key).lower()  # setting names are case-insensitive, as in the environment
        if name in settings:
            raise ConfigFileError(f"{where}: {name} is given twice (names are case-insensitive)")
        settings[name] = value
    return settings


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``EDGE_CONFIG``. Every key is passed on: an unknown one is an error
    (``extra="forbid"``), so a misspelt setting is never ignored."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("EDGE_CONFIG")
        self._data: dict[str, Any] = read_config_file(path) if path else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class EdgeSettings(BaseSettings):
    """Everything the edge can be told. Field docs state the default and the unit."""

    model_config = SettingsConfigDict(
        env_prefix="EDGE_", extra="forbid", env_ignore_empty=True, hide_input_in_errors=True
    )

    # --- Listening -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Interface to bind. Default 127.0.0.1; the compose file sets 0.0.0.0 inside its container."""
    port: int = Field(default=8000, ge=1, le=65535)
    """TCP port for HTTP (and, later, WebSocket) on ``/graphql``. Default 8000."""

    # --- Hasura ----------------------------------------------------------------------------
    hasura_url: AnyHttpUrl
    """Base URL of Hasura, e.g. ``http://hasura:8080``; the edge calls ``/v1/graphql`` and ``/healthz``."""
    hasura_admin_secret: SecretStr
    """Hasura's admin secret; the edge impersonates the verified role with it. Never logged."""

    # --- Identity --------------------------------------------------------------------------
    jwt_secret: SecretStr | None = None
    """Exactly Hasura's ``HASURA_GRAPHQL_JWT_SECRET`` JSON, or a JSON list of such objects."""
    unauthorized_role: str | None = None
    """Role for requests without credentials. Unset (default): such requests get 401."""

    # --- Browsers --------------------------------------------------------------------------
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Exact-match origins for CORS and the WebSocket Origin check. Comma-separated or JSON list."""
    allow_get: bool = True
    """Accept GraphQL queries over GET (mutations over GET always get 405). Default true."""
    graphiql: bool = False
    """Serve GraphiQL to browsers that open ``/graphql`` or ``/v1/graphql`` (``docs/graphiql.md``). Default false."""

    # --- Wire limits -----------------------------------------------------------------------
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body, counted while reading (413 above it). Default 1 MiB."""
    max_header_bytes: int = Field(default=32_768, ge=1024)
    """Largest request header block, names plus values (431 above it). Default 32 KiB."""
    max_url_bytes: int = Field(default=8_192, ge=256)
    """Longest request target (414 above it). Default 8 KiB."""
    request_deadline_seconds: float = Field(default=10.0, gt=0)
    """Time a client has to send a whole request, headers and body (408/close after it). Default 10 s."""
    keep_alive_seconds: float = Field(default=20.0, gt=0)
    """Idle time before a keep-alive client connection is closed. Default 20 s."""

    # --- Error responses -------------------------------------------------------------------
    error_statuses: ErrorStatusMode = "negotiate"
    """Statuses of the errors the edge answers itself: ``negotiate`` (default) by the client's ``Accept``
    (``application/graphql-response+json``: the edge's 4xx; ``application/json``: Hasura's 200 and error
    body), or ``edge`` / ``hasura`` for every client (``docs/errors.md``)."""

    # --- Upstream client -------------------------------------------------------------------
    upstream_client: UpstreamKind = "lean"
    """HTTP client to Hasura: ``lean`` (default, fastest measured), ``httpx``, ``httpx2``, ``httpx-aiohttp``."""
    upstream_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    """Connect timeout to Hasura (502 after it). Default 5 s."""
    upstream_read_timeout_seconds: float = Field(default=60.0, gt=0)
    """Time Hasura has to answer a request (504 after it). Default 60 s."""
    upstream_max_connections: int = Field(default=256, ge=1)
    """Pooled keep-alive connections to Hasura. Default 256."""
    upstream_idle_timeout_seconds: float = Field(default=15.0, gt=0)
    """Pooled connections idle this long are closed, not reused: keep it below the keep-alive timeout
    of Hasura (30 s, warp's default) and of any proxy in between. Default 15 s."""

    # --- Authorizer webhook ----------------------------------------------------------------
    authorizer_url: AnyHttpUrl | None = None
    """Auth webhook with Hasura's contract; decides identity for requests without JWT or key."""
    authorizer_mode: Literal["GET", "POST"] = "GET"
    """How the authorizer is called (Hasura's ``HASURA_GRAPHQL_AUTH_HOOK_MODE``). Default GET."""
    authorizer_send_request_body: bool = True
    """POST mode: include the GraphQL request. Default true."""
    authorizer_cache_seconds: float = Field(default=300.0, ge=0)
    """Cache a decision per credential this long (bounded by its Cache-Control/Expires). 0 disables."""
    authorizer_timeout_seconds: float = Field(default=5.0, gt=0)
    """Time the authorizer has to answer (503 after it). Default 5 s."""

    # --- Usage plans ------------------------------------------------------------------------
    plans: dict[str, Plan] = Field(default_factory=lambda: {DEFAULT_PLAN: Plan()})
    """Usage plans by name (see ``edge/plans.py``); usually declared in the EDGE_CONFIG file."""
    jwt_plan: str = Field(default=DEFAULT_PLAN, validate_default=True)
    """Plan for requests with verified credentials (JWT or authorizer) and no API key."""
    anonymous_plan: str = Field(default=DEFAULT_PLAN, validate_default=True)
    """Plan for requests without credentials (the unauthorized role), limited per client address."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """CIDRs whose X-Forwarded-For is believed (comma-separated or JSON list). Default none."""
    limiter_failure_mode: Literal["open", "closed"] = "open"
    """When Redis is unreachable: allow and count (open, default) or refuse with 503 (closed)."""
    api_key_cache_seconds: float = Field(default=30.0, gt=0)
    """How long a resolved API key is cached; revocation elsewhere takes effect within it."""
    api_key_negative_cache_seconds: float = Field(default=5.0, ge=0)
    """How long an unknown API key id is remembered as unknown."""

    # --- Operation analysis -----------------------------------------------------------------
    hasura_metadata_dir: Path | None = None
    """Hasura metadata directory; select-permission ``limit``s per role price list fields."""
    schema_refresh_seconds: float = Field(default=300.0, ge=0)
    """Re-introspect Hasura's schema this often (0: only at start and on demand). Default 300 s."""
    introspection_roles: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Roles allowed to introspect (and to see "Did you mean" hints) whatever their plan says."""
    default_list_size: int = Field(default=100, ge=1)
    """Rows assumed for a list field without a limit argument or permission limit. Default 100."""

    persisted_queries: bool = True
    """Accept Apollo's automatic persisted queries (hash-only requests). Default true."""
    persisted_manifest_file: Path | None = None
    """Apollo persisted-query manifest (``python -m edge manifest build``): the safelist for plans
    with ``graphql.safelist``, and hashes every client may send without registering them."""

    # --- Response cache ---------------------------------------------------------------------
    response_cache: Literal["off", "memory", "redis"] = "memory"
    """Where ``@cached`` responses are kept: ``memory`` (default, per process), ``redis`` (shared), ``off``."""
    cache_rules: list[CacheRule] = Field(default_factory=list)
    """Cache these operations by name without ``@cached``: ``[{operation_name: X, ttl: 30}]``."""
    response_cache_max_entries: int = Field(default=10_000, ge=1)
    """In-memory cache: most entries kept. Default 10,000."""
    response_cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """In-memory cache: most bytes kept. Default 64 MiB."""
    response_cache_max_entry_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest response stored. Default 1 MiB."""
    response_cache_vary_headers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["cookie"])
    """Request headers that are part of the cache key besides the session. Default ``cookie``."""
    response_cache_private: bool = True
    """Send ``Cache-Control: private, max-age=N`` (true, default) or Hasura's exact ``max-age=N``."""

    # --- Upstream resilience ----------------------------------------------------------------
    hasura_urls: str | None = None
    """Several Hasura instances, weighted: ``http://a:8080|3, http://b:8080``. Unset: ``EDGE_HASURA_URL``."""
    upstream_breaker_failure_threshold: int = Field(default=5, ge=1)
    """Consecutive failures (connect errors, timeouts, 502/503/504) that open an upstream's circuit."""
    upstream_breaker_reset_seconds: float = Field(default=10.0, gt=0)
    """How long an open circuit refuses (503 + Retry-After) before a half-open probe."""
    upstream_breaker_half_open_max_calls: int = Field(default=1, ge=1)
    """Probes allowed while half-open. Default 1."""
    upstream_health_interval_seconds: float = Field(default=5.0, gt=0)
    """With several Hasura URLs: how often each ``/healthz`` is checked. Default 5 s."""
    upstream_health_timeout_seconds: float = Field(default=2.0, gt=0)
    """Time each health check may take. Default 2 s."""
    upstream_drain_seconds: float = Field(default=10.0, ge=0)
    """On shutdown, how long in-flight requests to Hasura (HTTP, and WebSocket queries and mutations) may finish."""

    # --- Observability ----------------------------------------------------------------------
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve ``GET /metrics`` on its own port (recommended). Unset: on the main port, only with a token."""
    metrics_host: str = "127.0.0.1"
    """Interface for the metrics port. Default 127.0.0.1."""
    metrics_token: SecretStr | None = None
    """Bearer token required on ``/metrics`` (required when it is served on the main port)."""
    otel_exporter_otlp_endpoint: AnyHttpUrl | None = None
    """OTLP/HTTP traces URL, e.g. ``http://otel-collector:4318/v1/traces``. Unset (default): no tracing."""
    otel_service_name: str = "hasura-edge"
    """``service.name`` of the edge's spans. Default ``hasura-edge``."""
    otel_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of new traces recorded (0..1); a client's sampled ``traceparent`` is always kept. Default 1."""
    metrics_roles: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Roles always kept as metric label values (others: the first 20 seen, then ``other``)."""
    access_log_sample_rate: float = Field(default=1.0, ge=0, le=1)
    """Share of successful operations logged (errors always are). Default 1."""
    access_log_user_id: bool = True
    """Include ``x-hasura-user-id`` in access-log lines. Default true."""
    usage_admin_secret: SecretStr | None = None
    """Secret for ``GET /admin/usage`` (``X-Edge-Usage-Secret``). Unset: the route answers 404."""
    usage_period: Literal["month", "day"] = "month"
    """Billing period of the usage meter. Default month."""
    usage_flush_seconds: float = Field(default=5.0, gt=0)
    """How often buffered usage is written to Redis. Default 5 s."""

    # --- Shared state -----------------------------------------------------------------------
    redis_url: SecretStr | None = None
    """Redis for shared state (limits, budgets, cache, usage...): ``redis://`` one server, ``redis+sentinel://``
    a Sentinel-managed master, ``redis+cluster://`` a Cluster (``edge/redis_topology.py``). Optional
    (in-memory, per process otherwise); readiness checks it when set."""
    database_url: SecretStr | None = None
    """Postgres holding the ``edge`` schema (API keys). Optional: without it X-API-Key is refused."""
    admin_secret: SecretStr | None = None
    """Secret for the ``/admin`` routes (``X-Edge-Admin-Secret``). Unset: admin routes answer 404."""

    # --- Operations ------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level. Default info."""
    log_format: Literal["json", "console"] = "json"
    """Log line format. Default json."""

    # --- Worker processes ------------------------------------------------------------------
    workers: int | Literal["auto"] = "auto"
    """Processes serving the port: a number, or ``auto`` (default): one per CPU the container may use when
    ``EDGE_REDIS_URL`` is set, else 1 (``edge/workers/count.py``; ``docs/operations.md``, "Worker processes")."""

    # --- Subscriptions (WebSocket) ---------------------------------------------------------
    tls_cert_file: Path | None = None
    """PEM certificate (chain) for TLS on the edge's port: https and wss. Unset (default): plain HTTP/WS."""
    tls_key_file: Path | None = None
    """PEM private key for ``EDGE_TLS_CERT_FILE``. Required with it. Default unset."""
    ws_init_timeout_seconds: float = Field(default=3.0, gt=0)
    """Time a client has to send ``connection_init`` after the upgrade (close 4408). Default 3 s."""
    ws_keepalive_seconds: float = Field(default=5.0, gt=0)
    """Interval of the edge's keep-alives to clients (``ka`` or ``ping``). Default 5 s (Hasura's)."""
    ws_max_message_bytes: int = Field(default=65_536, ge=1024)
    """Largest WebSocket message a client may send (close 1009 above it). Default 64 KiB."""
    ws_max_messages_per_second: float = Field(default=50.0, gt=0)
    """Sustained messages per second a client may send on one socket (close 1008 above it). Default 50."""
    ws_message_burst: int = Field(default=100, ge=1)
    """Messages a client may send at once before the per-socket rate applies. Default 100."""
    ws_send_queue_messages: int = Field(default=256, ge=1)
    """Messages queued for a client that reads slowly before it is closed with 1013. Default 256."""
    ws_connections_per_second: float | None = Field(default=None, gt=0)
    """Connection rate per limit key (API key, user or address), shared across replicas (close 4429).
    Default unset: unlimited."""
    ws_connection_burst: int = Field(default=10, ge=1)
    """Connections per limit key allowed at once before ``EDGE_WS_CONNECTIONS_PER_SECOND`` applies. Default 10."""
    ws_expiry_grace_seconds: float = Field(default=0.0, ge=0)
    """Seconds a socket stays open after its credentials expire (clock skew allowance). Default 0."""
    ws_recheck_seconds: float | None = Field(default=None, gt=0)
    """How often sockets authenticated by API key re-check it (revoked: close 4403). Default unset:
    ``EDGE_API_KEY_CACHE_SECONDS``."""
    ws_upstream_reconnect_attempts: int = Field(default=2, ge=0)
    """Reconnects to Hasura (subscriptions re-subscribed) before clients are closed with 1011/1012/1013.
    Default 2."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls), file_secret_settings)

    @field_validator(
        "allowed_origins",
        "trusted_proxies",
        "response_cache_vary_headers",
        "metrics_roles",
        "introspection_roles",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return yaml.safe_load(text)  # a JSON list, or YAML's flow form of one
                except yaml.YAMLError:  # its message quotes the text
                    raise ValueError(
                        "starts with '[' but is not a JSON list (or give comma-separated values)"
                    ) from None
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            # Exact-match list: a wildcard or a path would silently never match (or match too much).
            if origin == "*" or not re.fullmatch(r"https?://[^/\s*]+", origin):
                raise ValueError(f"allowed origin {origin!r} must be scheme://host[:port], no wildcard or path")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("hasura_urls")
    @classmethod
    def _check_urls(cls, value: str | None) -> str | None:
        if value is not None:
            parse_targets(value)  # ValueError names the bad entry
        return value

    @field_validator("workers", mode="before")
    @classmethod
    def _check_workers(cls, value: Any) -> Any:
        # One message instead of one per member of the union ("constrained-int", "literal['auto']").
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            count = int(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else 0
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError("must be a whole number of at least 1, or auto")
        return count

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_redis_url(value.get_secret_value())  # ValueError says what is wrong, never the URL
        return value

    @model_validator(mode="after")
    def _shared_stores_need_redis(self) -> EdgeSettings:
        if self.response_cache == "redis" and self.redis_url is None:
            raise ValueError("EDGE_RESPONSE_CACHE=redis needs EDGE_REDIS_URL")
        return self

    @field_validator("jwt_plan", "anonymous_plan")
    @classmethod
    def _known_plan(cls, name: str, info: ValidationInfo) -> str:
        plans = info.data.get("plans")  # absent when the plans themselves are invalid
        if plans is not None and name not in plans:
            known = ", ".join(sorted(plans)) or "none"
            raise ValueError(f"names the unknown plan {name!r} (configured plans: {known})")
        return name

    @field_validator("hasura_admin_secret")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("EDGE_HASURA_ADMIN_SECRET is a placeholder value; set a real secret")
        if not value.get_secret_value():
            raise ValueError("EDGE_HASURA_ADMIN_SECRET must not be empty")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _parse_jwt_secret_early(cls, value: SecretStr | None) -> SecretStr | None:
        # Parse at start-up so a broken JWT config stops the process with a clear message
        # (which never repeats the key).
        if value is not None:
            parse_jwt_secret(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _need_some_identity(self) -> EdgeSettings:
        sources = (self.jwt_secret, self.unauthorized_role, self.authorizer_url, self.database_url)
        if all(source is None for source in sources):
            raise ValueError(
                "configure at least one of EDGE_JWT_SECRET, EDGE_AUTHORIZER_URL, EDGE_DATABASE_URL (API keys) "
                "or EDGE_UNAUTHORIZED_ROLE: without any, every request would be refused"
            )
        return self

    @property
    def jwt_configs(self) -> tuple[JWTConfig, ...]:
        if self.jwt_secret is None:
            return ()
        return parse_jwt_secret(self.jwt_secret.get_secret_value())

    @property
    def hasura_base_url(self) -> str:
        return str(self.hasura_url).rstrip("/")
