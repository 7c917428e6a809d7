"""One structured JSON line per GraphQL operation, cheap enough for every request.

Each line is ``logger.info("graphql_operation", extra=fields)`` on the ``edge.access`` logger, rendered by
``edge.logs.JsonFormatter``. The fields are exactly::

    request_id, batch_index, operation_type, operation_name, operation_hash, role, plan, key_id, user_id,
    cost_estimated, request_cost_estimated, cost_actual, status, error_code, duration_ms, upstream_ms

``batch_index`` is None for a single operation; a batch of n operations gives n lines sharing ``request_id``.
``operation_hash`` is the first 16 hex digits of sha256 of the query text (the same query gives the same hash
on every replica, so dashboards can group by it); hashes are cached per query string. ``cost_estimated`` is the
operation's own estimate when known (a single operation: ``ctx.estimated_cost``; a batch: only when the caller
passes ``estimated_costs``), and ``request_cost_estimated`` is the whole request's, so summing
``cost_estimated`` never counts a batch twice. ``status``, ``duration_ms`` and ``upstream_ms`` are the HTTP
request's (a batch is one HTTP exchange).

A WebSocket operation (``record_websocket``) gives one line with the same fields plus three of its own::

    transport ("websocket"), operation_id, outcome

``request_id`` is then the connection's and ``operation_id`` the client's id for the operation; ``batch_index``,
``cost_actual`` and ``upstream_ms`` are None, ``request_cost_estimated`` is the operation's estimate, and
``status``/``outcome`` say how it ended (``edge.ws.observation``). HTTP lines carry no ``transport`` field: each
key a line carries is work on every HTTP request.

Never logged: variables, the query text, headers, tokens, API keys (only ``key_id``), the admin secret. Only
the fields above are read from the context. ``user_id`` (``x-hasura-user-id``) is an identifier, not a
credential, and it is what usage is billed and abuse is traced by, so it is logged; pass
``include_user_id=False`` where user ids are personal data (an e-mail address) that must stay out of logs.

Cost: with INFO disabled for the logger, ``record`` returns after one cached ``isEnabledFor``. With
``sample_rate < 1`` successful operations are sampled; errors (status >= 400 or an error code) always log.
When the edge's own JSON handler alone would write the line, unchanged (``edge.logs.json_line_handler``:
what ``configure_logging`` sets up, with nothing added through ``logging``), the line is written by that
handler directly, without a ``LogRecord`` and the handler chain's calls: the same text at about a quarter of
the cost (``docs/benchmarks.md``, "Production configuration"). Anything configured through ``logging`` (a
handler, a filter, ``propagate``, pytest's ``caplog``) makes ``record`` log the usual way instead.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson

from edge.context import RequestContext
from edge.logs import JsonLineHandler, json_line_handler, logger_chain
from edge.observability.ws_operation import EndedOperation
from edge.session import Identity

__all__ = ["EVENT", "HTTP_FIELDS", "WEBSOCKET_FIELDS", "AccessLog", "LineEncoder", "operation_hash"]

EVENT: Final = "graphql_operation"
WEBSOCKET: Final = "websocket"
_MAX_NAME: Final = 128
_HASH_CACHE_SIZE: Final = 4096
_hashes: Final[dict[str, str]] = {}


# The keys of a line, in the order the line holds them (what ``extra=`` gives ``logging``, in this order).
HTTP_FIELDS: Final = (
    "request_id",
    "role",
    "plan",
    "key_id",
    "user_id",
    "request_cost_estimated",
    "status",
    "error_code",
    "duration_ms",
    "upstream_ms",
    "operation_type",
    "operation_name",
    "operation_hash",
    "batch_index",
    "cost_estimated",
    "cost_actual",
)
WEBSOCKET_FIELDS: Final = (
    "request_id",
    "batch_index",
    "operation_type",
    "operation_name",
    "operation_hash",
    "role",
    "plan",
    "key_id",
    "user_id",
    "cost_estimated",
    "request_cost_estimated",
    "cost_actual",
    "status",
    "error_code",
    "duration_ms",
    "upstream_ms",
    "transport",
    "operation_id",
    "outcome",
)


def operation_hash(query: str) -> str:
    """First 16 hex digits of sha256(query), cached (about 1 µs to compute, 50 ns to look up)."""
    cached = _hashes.get(query)
    if cached is None:
        cached = hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        if len(_hashes) >= _HASH_CACHE_SIZE:
            _hashes.clear()
        _hashes[query] = cached
    return cached


_NULL: Final = b"null"
_SMALL_INTS: Final = tuple(str(number).encode() for number in range(1024))
# ".000Z\"" to ".999Z\"": the end of ``ts`` by the line's millisecond (as ``edge.logs.JsonFormatter``).
_MILLISECONDS: Final = tuple(f'.{ms:03d}Z"'.encode() for ms in range(1000))
_CACHED_STRING: Final = 256  # longer strings are encoded each time, not kept
_ENCODED_CACHE_SIZE: Final = 4096
_encoded: Final[dict[str, bytes]] = {}


class Unencodable(Exception):
    """A value the direct encoding leaves to ``logging`` (whose formatter has its own fallback)."""


def _string(value: str) -> bytes:
    """``value`` as JSON, as orjson writes it; role, plan, key id, user id and names repeat, so are kept."""
    cached = _encoded.get(value)
    if cached is None:
        try:
            cached = orjson.dumps(value)
        except TypeError:  # a lone surrogate: orjson refuses it, and the formatter then falls back
            raise Unencodable from None
        if len(value) <= _CACHED_STRING:
            if len(_encoded) >= _ENCODED_CACHE_SIZE:
                _encoded.clear()
            _encoded[value] = cached
    return cached


def _json(value: object) -> bytes:
    """One value of a line as ``orjson.dumps(value, default=str)`` writes it; ``Unencodable`` where that fails."""
    if value is None:
        return _NULL
    if isinstance(value, str):
        return _string(value)
    if type(value) is int and 0 <= value < 1024:
        return _SMALL_INTS[value]
    try:
        return orjson.dumps(value, default=str)
    except TypeError:  # an integer past 64 bits, among others
        raise Unencodable from None


class LineEncoder:
    """The access log's line as bytes, built from its values: the line ``edge.logs.JsonFormatter`` writes for
    ``logging.getLogger(logger).info(event, extra=fields)`` through a ``JsonLineHandler`` of ``worker``, byte
    for byte (tests/edge/observability/test_access_line.py compares them on generated requests).

    The constant parts are encoded once: the keys, ``level``/``logger``/``event``, the worker's field, and the
    timestamp's text once per second; each value is encoded by itself (orjson for strings, floats and large
    numbers, with repeating strings kept encoded).
    """

    def __init__(self, logger: str, event: str, worker: int | None) -> None:
        self.head = b',"level":"info","logger":' + orjson.dumps(logger) + b',"event":' + orjson.dumps(event)
        self.tail = b"}\n" if worker is None else b',"worker":' + orjson.dumps(worker) + b"}\n"
        self.second = -1
        self.stamp = b""

    def line(self, created: float, keys: tuple[bytes, ...], values: list[object]) -> bytes:
        """The line of a record created at ``created`` (epoch seconds) with ``keys`` (from :func:`encoded_keys`)
        holding ``values``; raises ``Unencodable`` for a value orjson refuses."""
        whole = int(created)
        if whole != self.second:
            self.stamp = b'{"ts":"' + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)).encode()
            self.second = whole
        parts = [self.stamp, _MILLISECONDS[int((created - whole) * 1000)], self.head]
        for index in range(len(keys)):
            parts.append(keys[index])
            parts.append(_json(values[index]))
        parts.append(self.tail)
        return b"".join(parts)


def encoded_keys(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    """``,"key":`` for each key, as the line holds it."""
    return tuple(b"," + orjson.dumps(key) + b":" for key in keys)


_HTTP_KEYS: Final = encoded_keys(HTTP_FIELDS)
_WEBSOCKET_KEYS: Final = encoded_keys(WEBSOCKET_FIELDS)


class AccessLog:
    """Writes the access-log lines of a request; construct once, call ``record`` after each response."""

    def __init__(
        self,
        logger_name: str = "edge.access",
        sample_rate: float = 1.0,
        *,
        include_user_id: bool = True,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        self.logger = logging.getLogger(logger_name)
        self.chain = logger_chain(logger_name)
        self.sample_rate = sample_rate
        self.include_user_id = include_user_id
        self._random = random_source
        self._encoder: LineEncoder | None = None
        self._encoder_for: JsonLineHandler | None = None

    def record(
        self,
        ctx: RequestContext,
        *,
        status: int,
        duration: float,
        upstream_duration: float | None,
        error_code: str | None,
        estimated_costs: Sequence[int] | None = None,
        actual_costs: Sequence[int] | None = None,
    ) -> None:
        """Log one line per operation of ``ctx`` (durations in seconds; costs per operation, when known)."""
        if not self.logger.isEnabledFor(logging.INFO) or self._sampled_out(status, error_code):
            return
        role, key_id, user_id = self._who(ctx.identity)
        payload = ctx.payload
        if ctx.is_batch and isinstance(payload, list):
            operations: list[Any] = payload
        else:
            operations = [payload]
        analyses = ctx.analyses
        batch = ctx.is_batch
        estimated = ctx.estimated_cost
        plan = ctx.plan_name or None
        duration_ms = round(duration * 1000.0, 3)
        upstream_ms = None if upstream_duration is None else round(upstream_duration * 1000.0, 3)
        handler = json_line_handler(self.chain)
        created = time.time()
        for index, operation in enumerate(operations):
            analysis = analyses[index] if index < len(analyses) else None
            query = name = None
            if isinstance(operation, dict):
                query = operation.get("query")
                name = operation.get("operationName")
            operation_type = None
            if analysis is not None:
                operation_type = analysis.operation_type
                name = analysis.operation_name
            if estimated_costs is not None:
                cost_estimated = estimated_costs[index] if index < len(estimated_costs) else None
            else:
                cost_estimated = None if batch else estimated
            # In HTTP_FIELDS' order.
            values: list[object] = [
                ctx.request_id,
                role,
                plan,
                key_id,
                user_id,
                estimated,
                status,
                error_code,
                duration_ms,
                upstream_ms,
                operation_type,
                name[:_MAX_NAME] if isinstance(name, str) else None,
                operation_hash(query) if isinstance(query, str) else None,
                index if batch else None,
                cost_estimated,
                actual_costs[index] if actual_costs is not None and index < len(actual_costs) else None,
            ]
            self._write(handler, created, _HTTP_KEYS, HTTP_FIELDS, values)

    def _sampled_out(self, status: int, error_code: str | None) -> bool:
        """A successful line left out by ``sample_rate`` (errors are always logged)."""
        return self.sample_rate < 1.0 and status < 400 and error_code is None and self._random() >= self.sample_rate

    def _who(self, identity: Identity | None) -> tuple[str | None, str | None, str | None]:
        """``role``, ``key_id`` and ``user_id`` (unless ``include_user_id`` is off) of a line."""
        if identity is None:
            return None, None, None
        session = identity.session
        key = identity.api_key
        return session.role, key.key_id if key is not None else None, session.user_id if self.include_user_id else None

    def _write(
        self,
        handler: JsonLineHandler | None,
        created: float,
        keys: tuple[bytes, ...],
        names: tuple[str, ...],
        values: list[object],
    ) -> None:
        """One line, after the level check: encoded here and handed to the edge's JSON handler when nothing else
        is configured, else through ``logging`` (every configured handler and filter then sees the record)."""
        if handler is not None:
            encoder = self._encoder
            if encoder is None or self._encoder_for is not handler:
                encoder = self._encoder = LineEncoder(self.logger.name, EVENT, handler.worker)
                self._encoder_for = handler
            try:
                line = encoder.line(created, keys, values)
            except Unencodable:
                pass  # the formatter's own fallback writes it
            else:
                handler.write_encoded(line)
                return
        self.logger.info(EVENT, extra=dict(zip(names, values, strict=True)))

    def record_websocket(self, ended: EndedOperation) -> None:
        """Log the line of one WebSocket operation once it has ended."""
        if not self.logger.isEnabledFor(logging.INFO) or self._sampled_out(ended.status, ended.error_code):
            return
        role, key_id, user_id = self._who(ended.identity)
        name = ended.operation_name
        # In WEBSOCKET_FIELDS' order.
        values: list[object] = [
            ended.request_id,
            None,
            ended.operation_type,
            name[:_MAX_NAME] if name is not None else None,
            operation_hash(ended.query) if ended.query is not None else None,
            role,
            ended.plan or None,
            key_id,
            user_id,
            ended.cost_estimated,
            ended.cost_estimated,
            None,
            ended.status,
            ended.error_code,
            round(ended.duration * 1000.0, 3),
            None,
            WEBSOCKET,
            ended.operation_id[:_MAX_NAME],
            ended.outcome,
        ]
        self._write(json_line_handler(self.chain), time.time(), _WEBSOCKET_KEYS, WEBSOCKET_FIELDS, values)
