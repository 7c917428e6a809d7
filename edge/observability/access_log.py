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

__all__ = [
    "EVENT",
    "HTTP_FIELDS",
    "WEBSOCKET_FIELDS",
    "AccessLog",
    "LineEncoder",
    "Unencodable",
    "milliseconds",
    "operation_hash",
]

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


_NULL: Final = "null"
_SMALL_INTS: Final = tuple(str(number) for number in range(1024))
# '.000Z"' to '.999Z"': the end of ``ts`` by the line's millisecond (as ``edge.logs.JsonFormatter``).
_MILLISECONDS: Final = tuple(f'.{ms:03d}Z"' for ms in range(1000))
# The decimals of a number of thousandths as its shortest text writes them: "0", "001", "01", "1", "999".
_THOUSANDTHS: Final = tuple(f"{number:03d}".rstrip("0") or "0" for number in range(1000))
_CACHED_STRING: Final = 256  # longer strings are encoded each time, not kept
_ENCODED_CACHE_SIZE: Final = 4096
_encoded: Final[dict[str, str]] = {}


class Unencodable(Exception):
    """A value the direct encoding leaves to ``logging`` (whose formatter has its own fallback)."""


def _string(value: str) -> str:
    """``value`` as JSON, as orjson writes it; role, plan, key id, user id and names repeat, so are kept."""
    cached = _encoded.get(value)
    if cached is None:
        try:
            cached = orjson.dumps(value).decode("utf-8")
        except TypeError:  # a lone surrogate: orjson refuses it, and the formatter then falls back
            raise Unencodable from None
        if len(value) <= _CACHED_STRING:
            if len(_encoded) >= _ENCODED_CACHE_SIZE:
                _encoded.clear()
            _encoded[value] = cached
    return cached


def _float(value: float) -> str:
    """A float as orjson writes it (its shortest round-trip text); a whole number of thousandths (what
    :func:`milliseconds` gives) is written from its digits, without formatting a float."""
    if 0.0 < value < 1e9:  # below 2**41: a whole number of thousandths has no shorter text than its own
        thousandths = int(value * 1000.0 + 0.5)
        if thousandths / 1000 == value:
            return f"{thousandths // 1000}.{_THOUSANDTHS[thousandths % 1000]}"
    return orjson.dumps(value).decode("utf-8")


def _json(value: object) -> str:
    """One value of a line as ``orjson.dumps(value, default=str)`` writes it; ``Unencodable`` where that fails."""
    if value is None:
        return _NULL
    if isinstance(value, str):
        return _string(value)
    try:
        if type(value) is int:
            if 0 <= value < 1024:
                return _SMALL_INTS[value]
            return orjson.dumps(value).decode("utf-8")
        if type(value) is float:
            return _float(value)
        return orjson.dumps(value, default=str).decode("utf-8")
    except TypeError:  # an integer past 64 bits, among others
        raise Unencodable from None


def milliseconds(seconds: float) -> float:
    """A duration in milliseconds to the microsecond (``duration_ms``, ``upstream_ms``)."""
    if 0.0 <= seconds < 1e6:
        return int(seconds * 1e6 + 0.5) / 1000  # round() to 3 digits formats the float: 5 times the cost
    return round(seconds * 1000.0, 3)


class LineEncoder:
    """The access log's line as text, built from its values: the line ``edge.logs.JsonFormatter`` writes for
    ``logging.getLogger(logger).info(event, extra=fields)`` through a ``JsonLineHandler`` of ``worker``, character
    for character (tests/edge/observability/test_access_line.py compares them on generated values and requests).

    The constant parts are written once: the keys, ``level``/``logger``/``event``, the worker's field, and the
    timestamp's text once per second; each value is encoded by itself (orjson for strings, other floats and
    large numbers; repeating strings kept encoded) and the line is one f-string.
    """

    def __init__(self, logger: str, event: str, worker: int | None) -> None:
        dumps = orjson.dumps
        self.head = (b',"level":"info","logger":' + dumps(logger) + b',"event":' + dumps(event)).decode("utf-8")
        self.tail = "}\n" if worker is None else ',"worker":' + dumps(worker).decode("utf-8") + "}\n"
        self.second = -1
        self.stamp = ""

    def start(self, created: float) -> str:
        """``{"ts":"2026-11-18T11:06:40.250Z"`` and the constant fields, for a record made at ``created``."""
        whole = int(created)
        if whole != self.second:
            self.stamp = '{"ts":"' + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self.second = whole
        return f"{self.stamp}{_MILLISECONDS[int((created - whole) * 1000)]}{self.head}"

    def http_line(self, created: float, values: list[object]) -> str:
        """The line of an HTTP operation: ``values`` in ``HTTP_FIELDS``' order."""
        return (
            f'{self.start(created)},"request_id":{_json(values[0])},"role":{_json(values[1])},'
            f'"plan":{_json(values[2])},"key_id":{_json(values[3])},"user_id":{_json(values[4])},'
            f'"request_cost_estimated":{_json(values[5])},"status":{_json(values[6])},'
            f'"error_code":{_json(values[7])},"duration_ms":{_json(values[8])},"upstream_ms":{_json(values[9])},'
            f'"operation_type":{_json(values[10])},"operation_name":{_json(values[11])},'
            f'"operation_hash":{_json(values[12])},"batch_index":{_json(values[13])},'
            f'"cost_estimated":{_json(values[14])},"cost_actual":{_json(values[15])}{self.tail}'
        )

    def websocket_line(self, created: float, values: list[object]) -> str:
        """The line of a WebSocket operation: ``values`` in ``WEBSOCKET_FIELDS``' order."""
        return (
            f'{self.start(created)},"request_id":{_json(values[0])},"batch_index":{_json(values[1])},'
            f'"operation_type":{_json(values[2])},"operation_name":{_json(values[3])},'
            f'"operation_hash":{_json(values[4])},"role":{_json(values[5])},"plan":{_json(values[6])},'
            f'"key_id":{_json(values[7])},"user_id":{_json(values[8])},"cost_estimated":{_json(values[9])},'
            f'"request_cost_estimated":{_json(values[10])},"cost_actual":{_json(values[11])},'
            f'"status":{_json(values[12])},"error_code":{_json(values[13])},"duration_ms":{_json(values[14])},'
            f'"upstream_ms":{_json(values[15])},"transport":{_json(values[16])},'
            f'"operation_id":{_json(values[17])},"outcome":{_json(values[18])}{self.tail}'
        )


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
        duration_ms = milliseconds(duration)
        upstream_ms = None if upstream_duration is None else milliseconds(upstream_duration)
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
            self._write(handler, created, False, values)

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
        websocket: bool,
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
                line = encoder.websocket_line(created, values) if websocket else encoder.http_line(created, values)
            except Unencodable:
                pass  # the formatter's own fallback writes it
            else:
                handler.write_encoded(line)
                return
        self.logger.info(EVENT, extra=dict(zip(WEBSOCKET_FIELDS if websocket else HTTP_FIELDS, values, strict=True)))

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
            milliseconds(ended.duration),
            None,
            WEBSOCKET,
            ended.operation_id[:_MAX_NAME],
            ended.outcome,
        ]
        self._write(json_line_handler(self.chain), time.time(), True, values)
