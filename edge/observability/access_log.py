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
When the edge's own JSON handler alone would write the line, unchanged (:func:`json_line_handler`: what
``configure_logging`` sets up, with nothing added through ``logging``), the line is written by that handler
directly, without a ``LogRecord`` and the handler chain's calls, and its text is built here from parts kept
encoded: the second's timestamp, the constant keys, each status's fields, a user's ``role``/``plan``/``key_id``/
``user_id`` fields and a query's ``operation_*`` fields (so a repeated user or query costs a dictionary lookup,
not an encoding per field). The text is the formatter's, byte for byte (``tests/edge/observability/
test_access_line.py``); ``docs/benchmarks.md``, "Production configuration", has the cost. Anything configured
through ``logging`` (a handler, a filter, ``propagate``, pytest's ``caplog``) makes ``record`` log the usual way
instead.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import orjson

from edge.context import RequestContext
from edge.logs import JsonLineHandler, logger_chain
from edge.observability.ws_operation import EndedOperation
from edge.session import Identity

if TYPE_CHECKING:
    from edge.graphql.analysis import OperationAnalysis

__all__ = [
    "EVENT",
    "HTTP_FIELDS",
    "WEBSOCKET_FIELDS",
    "AccessLog",
    "LineEncoder",
    "Unencodable",
    "json_line_handler",
    "milliseconds",
    "operation_hash",
]

EVENT: Final = "graphql_operation"
WEBSOCKET: Final = "websocket"
_INFO: Final = logging.INFO
_MAX_NAME: Final = 128
_HASH_CACHE_SIZE: Final = 4096
# As many users as the token and session memos keep (edge.auth.jwt_verifier, edge.pipeline.authenticate):
# every user whose session is remembered has its fields remembered too.
_WHO_CACHE_SIZE: Final = 10_000
_ID_LENGTH: Final = 36  # a request id made by edge.http.request_id: a UUID's form
_ID_PREFIX: Final = 24  # its part that is the same for the whole process
_CACHED_WHO: Final = 1024  # longer fields (a user id of a kilobyte) are encoded each time, not kept
# Bound once: a module attribute looked up per call costs as much as a small encoding.
_dumps: Final = orjson.dumps
_now: Final = time.time


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


_NULL: Final = "null"
_SMALL_INTS: Final = tuple(str(number) for number in range(1024))
# orjson writes integers of 64 bits (signed or not) and refuses larger ones.
_MIN_INT: Final = -(2**63)
_MAX_INT: Final = 2**64 - 1
# '.000Z"' to '.999Z"': the end of ``ts`` by the line's millisecond (as ``edge.logs.JsonFormatter``).
_MILLISECONDS: Final = tuple(f'.{ms:03d}Z"' for ms in range(1000))
# The decimals of a number of thousandths as its shortest text writes them: "0", "001", "01", "1", "999".
_THOUSANDTHS: Final = tuple(f"{number:03d}".rstrip("0") or "0" for number in range(1000))
_DOT_THOUSANDTHS: Final = tuple(f".{decimals}" for decimals in _THOUSANDTHS)
# The line's fields from ``status`` to ``duration_ms``'s key for a status without an error code.
_STATUS_FIELDS: Final = tuple(f',"status":{status},"error_code":null,"duration_ms":' for status in range(600))
_NOT_IN_A_BATCH: Final = ',"batch_index":null,"cost_estimated":'
_CACHED_STRING: Final = 256  # longer strings are encoded each time, not kept
_ENCODED_CACHE_SIZE: Final = 4096
_encoded: Final[dict[str, str]] = {}


class _Fields:
    """The ``operation_*`` fields of a line, with what they were written for: the operation's analysis (the same
    object for the same query while the analyser keeps it, and immutable), else the request's operation name."""

    def __init__(self, analysis: OperationAnalysis | None, name: str | None, query_hash: str) -> None:
        self.analysis = analysis
        self.name = name
        self.fields = f'{_type_and_name(analysis, name)},"operation_hash":"{query_hash}"'
        self.unbatched = self.fields + _NOT_IN_A_BATCH  # and what follows them for an operation outside a batch


class _Query:
    """What a query text gives a line: its hash, and its ``operation_*`` fields as last written (a query's type
    and name rarely change between requests; the fields are replaced whole, so no thread sees half of them)."""

    def __init__(self, query_hash: str) -> None:
        self.hash = query_hash
        self.written: _Fields | None = None


_queries: Final[dict[str, _Query]] = {}


def _query(query: str) -> _Query:
    cached = _queries.get(query)
    if cached is None:
        cached = _Query(hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()[:16])
        if len(_queries) >= _HASH_CACHE_SIZE:
            _queries.clear()
        _queries[query] = cached
    return cached


def operation_hash(query: str) -> str:
    """First 16 hex digits of sha256(query), cached (about 1 µs to compute, 50 ns to look up)."""
    return _query(query).hash


class Unencodable(Exception):
    """A value the direct encoding leaves to ``logging`` (whose formatter has its own fallback)."""


def _string(value: str) -> str:
    """``value`` as JSON, as orjson writes it; role, plan, key id, user id and names repeat, so are kept."""
    cached = _encoded.get(value)
    if cached is None:
        cached = _once(value)
        if len(value) <= _CACHED_STRING:
            if len(_encoded) >= _ENCODED_CACHE_SIZE:
                _encoded.clear()
            _encoded[value] = cached
    return cached


def _once(value: str) -> str:
    """``value`` as JSON, as orjson writes it, for a string that does not repeat (a request id)."""
    try:
        return _dumps(value).decode("utf-8")
    except TypeError:  # a lone surrogate: orjson refuses it, and the formatter then falls back
        raise Unencodable from None


def _optional(value: str | None) -> str:
    return _NULL if value is None else _string(value)


def _int(value: int) -> str:
    """An integer as orjson writes it; ``Unencodable`` past 64 bits."""
    if 0 <= value < 1024:
        return _SMALL_INTS[value]
    if value < _MIN_INT or value > _MAX_INT:
        raise Unencodable
    return str(value)


def _number(value: object) -> str:
    """A cost: an integer or None, as orjson writes it (anything else as :func:`_json` does)."""
    if value is None:
        return _NULL
    if type(value) is int:
        return _int(value)
    return _json(value)


def _float(value: float) -> str:
    """A float as orjson writes it (its shortest round-trip text); a whole number of thousandths (what
    :func:`milliseconds` gives) is written from its digits, without formatting a float."""
    if 0.0 < value < 1e9:  # below 2**41: a whole number of thousandths has no shorter text than its own
        thousandths = int(value * 1000.0 + 0.5)
        if thousandths / 1000 == value:
            return f"{thousandths // 1000}.{_THOUSANDTHS[thousandths % 1000]}"
    return _dumps(value).decode("utf-8")


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
            return _dumps(value).decode("utf-8")
        if type(value) is float:
            return _float(value)
        return _dumps(value, default=str).decode("utf-8")
    except TypeError:  # an integer past 64 bits, among others
        raise Unencodable from None


def milliseconds(seconds: float) -> float:
    """A duration in milliseconds to the microsecond (``duration_ms``, ``upstream_ms``)."""
    if 0.0 <= seconds < 1e6:
        return int(seconds * 1e6 + 0.5) / 1000  # round() to 3 digits formats the float: 5 times the cost
    return round(seconds * 1000.0, 3)


def _milliseconds_text(seconds: float) -> tuple[str, str]:
    """``milliseconds(seconds)`` as orjson writes it, in two parts: the whole milliseconds, then the point and
    the decimals (the line takes both as they are, without joining them first)."""
    if 0.0 <= seconds < 1e6:
        micros = int(seconds * 1e6 + 0.5)  # milliseconds() is micros / 1000: its text is micros' digits
        whole = micros // 1000
        return _SMALL_INTS[whole] if whole < 1024 else str(whole), _DOT_THOUSANDTHS[micros % 1000]
    return _float(milliseconds(seconds)), ""


def _status_fields(status: int, error_code: str | None) -> str:
    """``,"status":…,"error_code":…,"duration_ms":`` (without the duration)."""
    if error_code is None and 0 <= status < 600:
        return _STATUS_FIELDS[status]
    return f',"status":{_int(status)},"error_code":{_optional(error_code)},"duration_ms":'


def _short(name: object) -> str | None:
    """``operation_name``: a name as given, cut to _MAX_NAME characters; anything else None."""
    return name[:_MAX_NAME] if isinstance(name, str) else None


def _type_and_name(analysis: OperationAnalysis | None, name: str | None) -> str:
    """``,"operation_type":…,"operation_name":…``: from the analysis when there is one, else only the name."""
    if analysis is None:
        return f',"operation_type":null,"operation_name":{_optional(name)}'
    return (
        f',"operation_type":{_optional(analysis.operation_type)},'
        f'"operation_name":{_optional(_short(analysis.operation_name))}'
    )


def _operation_fields(query: object, analysis: OperationAnalysis | None, name: str | None, batch: bool) -> str:
    """``,"operation_type":…,"operation_name":…,"operation_hash":…`` of one operation (``name``: the request's
    operation name, cut, used only without an analysis), and for an operation outside a batch the
    ``batch_index`` (null) and the key of ``cost_estimated``."""
    if not isinstance(query, str):
        fields = f'{_type_and_name(analysis, name)},"operation_hash":null'
        return fields if batch else fields + _NOT_IN_A_BATCH
    cached = _query(query)
    written = cached.written
    if written is None or written.analysis is not analysis or (analysis is None and not _same(written.name, name)):
        written = cached.written = _Fields(analysis, name, cached.hash)
    return written.fields if batch else written.unbatched


def _same(one: str | None, other: str | None) -> bool:
    """Equal strings, or both None (the same object, most often: the check is then one comparison)."""
    if one is other:
        return True
    return one is not None and other is not None and one == other


# A user's fields from ``role`` to ``request_cost_estimated``'s key, after the role, plan, key id and user id they
# were written for: a tuple of strings, which the garbage collector stops tracking (thousands are kept).
_Who = tuple[str | None, str | None, str | None, str | None, str]


_JSON_LINE_HANDLER: Final = JsonLineHandler  # a static, not a lookup in the module's dict per call


def json_line_handler(chain: tuple[logging.Logger, ...]) -> JsonLineHandler | None:
    """The edge's JSON handler when it alone writes INFO records of ``chain[0]``, unchanged; else None.

    ``chain`` is a logger and its ancestors up to the root (``edge.access``, ``edge``, root:
    ``edge.logs.logger_chain``). Whatever an operator configures through ``logging`` (a handler or filter on any
    of them, ``propagate`` turned off, another formatter, a filter or a level above INFO on the handler) makes
    this None, and the caller then logs the record the usual way, so every ``logging`` configuration still
    applies. The caller checks the level first. It runs for every request, so it lives here, compiled with the
    access log (``edge.logs`` is not compiled).
    """
    found: JsonLineHandler | None = None
    last = len(chain) - 1
    for index in range(last + 1):
        logger = chain[index]
        if logger.filters:
            return None
        handlers = logger.handlers
        if handlers:
            handler = handlers[0]
            if found is not None or len(handlers) != 1 or not isinstance(handler, _JSON_LINE_HANDLER):
                return None
            found = handler
        if index < last and not logger.propagate:
            break
    if found is None:
        return None
    # As configured: its own formatter, its own filters (the worker's field) and nothing else, no level above INFO.
    if found.formatter is not found.json or found.filters != found.own_filters or found.level > _INFO:
        return None
    return found


class LineEncoder:
    """The access log's line as text, built from its values: the line ``edge.logs.JsonFormatter`` writes for
    ``logging.getLogger(logger).info(event, extra=fields)`` through a ``JsonLineHandler`` of ``worker``, character
    for character (tests/edge/observability/test_access_line.py compares them on generated values and requests).

    The constant parts are written once: the keys, ``level``/``logger``/``event``, the worker's field, and the
    timestamp's text once per second; each value is encoded by itself (orjson for strings, other floats and
    large numbers; repeating strings kept encoded) and the line is one f-string. ``AccessLog.record`` builds an
    HTTP line from parts of its own (the fields it keeps per user and per query) and this encoder's
    ``heads`` and :meth:`second`.
    """

    def __init__(self, logger: str, event: str, worker: int | None) -> None:
        dumps = orjson.dumps
        self.head = (b',"level":"info","logger":' + dumps(logger) + b',"event":' + dumps(event)).decode("utf-8")
        self.tail = "}\n" if worker is None else ',"worker":' + dumps(worker).decode("utf-8") + "}\n"
        # By millisecond: the end of ``ts``, the constant fields and the first key of an HTTP line.
        self.heads = tuple(f'{milliseconds}{self.head},"request_id":' for milliseconds in _MILLISECONDS)
        # The second's text with its second, replaced whole: a thread never pairs a second with another's text.
        self.stamp: tuple[int, str] = (-1, "")

    def second(self, whole: int) -> str:
        """``{"ts":"2026-11-18T11:06:40``: the line's start up to the millisecond, for epoch second ``whole``."""
        second, text = self.stamp
        if second != whole:
            text = '{"ts":"' + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self.stamp = (whole, text)
        return text

    def start(self, created: float) -> str:
        """``{"ts":"2026-11-18T11:06:40.250Z"`` and the constant fields, for a record made at ``created``."""
        whole = int(created)
        return f"{self.second(whole)}{_MILLISECONDS[int((created - whole) * 1000)]}{self.head}"

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
        self._pending: list[str] = []  # the lines ``_encoder_for`` holds for the turn's write
        # The first _ID_PREFIX characters of a request id that needed no escape (see _request_id).
        self._id_prefix: str | None = None
        # ``role`` to ``request_cost_estimated`` by user (user id, else key id, else role; checked on use).
        self._users: dict[str, _Who] = {}

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
        if not self.logger.isEnabledFor(_INFO) or self._sampled_out(status, error_code):
            return
        role, key_id, user_id = self._who(ctx.identity)
        plan = ctx.plan_name or None
        payload = ctx.payload
        batch = ctx.is_batch
        many = batch and isinstance(payload, list)  # else the payload is the one operation (or whatever came)
        count = len(payload) if many else 1
        analyses = ctx.analyses
        estimated = ctx.estimated_cost
        # As objects: a cost is written as the value given (what the formatter would write for it).
        estimates: Sequence[object] | None = estimated_costs
        actuals: Sequence[object] | None = actual_costs
        created = _now()
        handler = json_line_handler(self.chain)
        # The parts every line of the request shares, encoded once (when the handler writes directly).
        request_id = quote = who = estimated_text = status_text = duration_whole = duration_decimals = ""
        upstream_whole = _NULL
        upstream_decimals = ""
        encoder: LineEncoder | None = None
        if handler is not None:
            encoder = self._encoder_of(handler)
            try:
                request_id, quote = self._request_id(ctx.request_id)
                who = self._who_fields(role, plan, key_id, user_id)
                estimated_text = _int(estimated)
                status_text = _status_fields(status, error_code)
                duration_whole, duration_decimals = _milliseconds_text(duration)
                if upstream_duration is not None:
                    upstream_whole, upstream_decimals = _milliseconds_text(upstream_duration)
            except Unencodable:
                handler = None  # the formatter's own fallback writes the lines
        for index in range(count):
            operation = payload[index] if many else payload
            analysis = analyses[index] if index < len(analyses) else None
            query: object = None
            name: str | None = None  # the request's operation name: the line's when there is no analysis
            if isinstance(operation, dict):
                query = operation.get("query")
                if analysis is None:
                    name = _short(operation.get("operationName"))
            if estimates is not None:
                cost_estimated: object = estimates[index] if index < len(estimates) else None
            else:
                cost_estimated = None if batch else estimated
            cost_actual: object = actuals[index] if actuals is not None and index < len(actuals) else None
            if handler is not None and encoder is not None:
                try:
                    operation_fields = _operation_fields(query, analysis, name, batch)
                    batch_fields = f',"batch_index":{_int(index)},"cost_estimated":' if batch else ""
                    cost_estimated_text = _number(cost_estimated)
                    cost_actual_text = _number(cost_actual)
                except Unencodable:
                    pass  # this line through logging
                else:
                    whole = int(created)
                    pending = self._pending
                    pending.append(
                        f"{encoder.second(whole)}{encoder.heads[int((created - whole) * 1000)]}{quote}{request_id}"
                        f"{quote}{who}{estimated_text}{status_text}{duration_whole}{duration_decimals}"
                        f',"upstream_ms":{upstream_whole}{upstream_decimals}{operation_fields}{batch_fields}'
                        f'{cost_estimated_text},"cost_actual":{cost_actual_text}{encoder.tail}'
                    )
                    if len(pending) == 1:
                        handler.write_soon()
                    continue
            operation_type: str | None = None
            if analysis is not None:
                operation_type = analysis.operation_type
                name = _short(analysis.operation_name)
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
                milliseconds(duration),
                None if upstream_duration is None else milliseconds(upstream_duration),
                operation_type,
                name,
                operation_hash(query) if isinstance(query, str) else None,
                index if batch else None,
                cost_estimated,
                cost_actual,
            ]
            self.logger.info(EVENT, extra=dict(zip(HTTP_FIELDS, values, strict=True)))

    def _request_id(self, request_id: str) -> tuple[str, str]:
        """``request_id`` as JSON: the text and the quotes around it ("" when the text is encoded, quotes included).

        The edge's own ids (``edge.http.request_id``) are 36 characters, a prefix of 24 that is the same for every
        id of the process and 12 hexadecimal digits: once one id needed no escape, an id with its prefix and a
        tail of letters and digits needs none either, and is written as it is (a third of the cost of encoding
        it). Anything else is encoded.
        """
        prefix = self._id_prefix
        if (
            prefix is not None
            and len(request_id) == _ID_LENGTH
            and request_id.startswith(prefix)
            and request_id[_ID_PREFIX:].isalnum()
        ):
            return request_id, '"'
        encoded = _once(request_id)
        if len(request_id) == _ID_LENGTH and len(encoded) == _ID_LENGTH + 2:  # nothing was escaped
            self._id_prefix = request_id[:_ID_PREFIX]
        return encoded, ""

    def _who_fields(self, role: str | None, plan: str | None, key_id: str | None, user_id: str | None) -> str:
        """``,"role":…`` to ``"request_cost_estimated":``, kept per user (the key: user id, else key id, else
        role; what they were written for is checked on each use, so any key is only a place to look)."""
        key = user_id if user_id is not None else key_id if key_id is not None else role if role is not None else ""
        cached = self._users.get(key)
        if cached is not None:
            kept_role, kept_plan, kept_key_id, kept_user_id, fields = cached
            if (
                _same(kept_user_id, user_id)
                and _same(kept_role, role)
                and _same(kept_plan, plan)
                and _same(kept_key_id, key_id)
            ):
                return fields
        fields = (
            f',"role":{_optional(role)},"plan":{_optional(plan)},"key_id":{_optional(key_id)},'
            f'"user_id":{_optional(user_id)},"request_cost_estimated":'
        )
        if len(fields) <= _CACHED_WHO:
            if len(self._users) >= _WHO_CACHE_SIZE:
                self._users.clear()
            self._users[key] = (role, plan, key_id, user_id, fields)
        return fields

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

    def _encoder_of(self, handler: JsonLineHandler) -> LineEncoder:
        """The encoder of lines written by ``handler`` (its worker's field; the timestamp's second kept)."""
        encoder = self._encoder
        if encoder is None or self._encoder_for is not handler:
            encoder = self._encoder = LineEncoder(self.logger.name, EVENT, handler.worker)
            self._encoder_for = handler
            self._pending = handler.pending
        return encoder

    def record_websocket(self, ended: EndedOperation) -> None:
        """Log the line of one WebSocket operation once it has ended."""
        if not self.logger.isEnabledFor(_INFO) or self._sampled_out(ended.status, ended.error_code):
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
        handler = json_line_handler(self.chain)
        if handler is not None:
            try:
                line = self._encoder_of(handler).websocket_line(_now(), values)
            except Unencodable:
                pass  # the formatter's own fallback writes it
            else:
                handler.write_encoded(line)
                return
        self.logger.info(EVENT, extra=dict(zip(WEBSOCKET_FIELDS, values, strict=True)))
