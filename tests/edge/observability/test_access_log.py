"""AccessLog: one line per operation with exactly the documented fields, and nothing secret in it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest

from edge.context import RequestContext
from edge.graphql.analysis import analyse
from edge.keys.model import ApiKey
from edge.logs import JsonFormatter, JsonLineHandler
from edge.observability.access_log import EVENT, AccessLog, json_line_handler, operation_hash
from edge.observability.ws_operation import EndedOperation
from edge.session import Identity, Session

FIELDS = {
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
}
TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token-body.sig"
RAW_KEY = "edge_live_RAWKEYSECRETDONOTLOG"
VARIABLE = "variable-value-never-logged"
ADMIN_SECRET = "admin-secret-never-logged"
QUERY = "query Users($x: String) { users(where: {name: {_eq: $x}}) { id } }"
MUTATION = "mutation Touch { touch { id } }"


def api_key() -> ApiKey:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    return ApiKey(uuid4(), "key_abc123", "acme", "pro", "user", {}, now, None, None, None)


def context(payload: Any, *, batch: bool = False, with_key: bool = True) -> RequestContext:
    ctx = RequestContext(
        method="POST",
        headers=[
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"x-api-key", RAW_KEY.encode()),
            (b"x-hasura-admin-secret", ADMIN_SECRET.encode()),
        ],
        query_string=b"",
        client=("203.0.113.9", 5000),
        request_id="req-1",
    )
    ctx.payload = payload
    ctx.is_batch = batch
    ctx.body = orjson.dumps(payload)
    session = Session("user", {"x-hasura-user-id": "u-42", "x-hasura-org": VARIABLE}, "u-42")
    ctx.identity = Identity(session, "api_key" if with_key else "jwt", api_key() if with_key else None)
    ctx.plan_name = "pro"
    ctx.upstream_headers = [(b"x-hasura-admin-secret", ADMIN_SECRET.encode())]
    operations = payload if isinstance(payload, list) else [payload]
    ctx.analyses = [analyse(op["query"], op.get("operationName"), max_tokens=10_000) for op in operations]
    ctx.estimated_cost = 12
    return ctx


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> AccessLog:
    caplog.set_level(logging.INFO, logger="edge.access")
    return AccessLog()


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    formatter = JsonFormatter()
    return [
        orjson.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "edge.access" and record.getMessage() == EVENT
    ]


def test_one_operation_gives_one_line_with_exactly_the_documented_fields(
    access_log: AccessLog, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = context({"query": QUERY, "operationName": "Users", "variables": {"x": VARIABLE}})
    access_log.record(ctx, status=200, duration=0.0123, upstream_duration=0.004, error_code=None, actual_costs=[7])
    [line] = lines(caplog)
    assert set(line) - {"ts", "level", "logger", "event"} == FIELDS
    assert line["event"] == "graphql_operation"
    assert line["logger"] == "edge.access"
    assert {key: line[key] for key in FIELDS} == {
        "request_id": "req-1",
        "batch_index": None,
        "operation_type": "query",
        "operation_name": "Users",
        "operation_hash": hashlib.sha256(QUERY.encode()).hexdigest()[:16],
        "role": "user",
        "plan": "pro",
        "key_id": "key_abc123",
        "user_id": "u-42",
        "cost_estimated": 12,
        "request_cost_estimated": 12,
        "cost_actual": 7,
        "status": 200,
        "error_code": None,
        "duration_ms": 12.3,
        "upstream_ms": 4.0,
    }


def test_no_variables_tokens_keys_secrets_or_query_text_reach_the_output(access_log: AccessLog) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("edge.access")
    logger.addHandler(handler)
    try:
        ctx = context({"query": QUERY, "operationName": "Users", "variables": {"x": VARIABLE}})
        access_log.record(ctx, status=200, duration=0.001, upstream_duration=None, error_code=None)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert output.count("\n") == 1
    for secret in (TOKEN, RAW_KEY, VARIABLE, ADMIN_SECRET, "users(where", "203.0.113.9"):
        assert secret not in output


def test_a_batch_gives_one_line_per_operation_sharing_the_request_id(
    access_log: AccessLog, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = context(
        [{"query": QUERY, "operationName": "Users", "variables": {"x": VARIABLE}}, {"query": MUTATION}], batch=True
    )
    access_log.record(ctx, status=200, duration=0.002, upstream_duration=0.001, error_code=None)
    first, second = lines(caplog)
    assert [first["batch_index"], second["batch_index"]] == [0, 1]
    assert first["request_id"] == second["request_id"] == "req-1"
    assert (first["operation_type"], second["operation_type"]) == ("query", "mutation")
    assert (first["operation_name"], second["operation_name"]) == ("Users", "Touch")
    assert first["operation_hash"] != second["operation_hash"]
    # Per-operation estimates are unknown here: never the request total twice.
    assert first["cost_estimated"] is None and second["cost_estimated"] is None
    assert first["request_cost_estimated"] == second["request_cost_estimated"] == 12


def test_a_batch_with_per_operation_costs(access_log: AccessLog, caplog: pytest.LogCaptureFixture) -> None:
    ctx = context([{"query": QUERY}, {"query": MUTATION}], batch=True)
    access_log.record(
        ctx,
        status=200,
        duration=0.002,
        upstream_duration=0.001,
        error_code=None,
        estimated_costs=[10, 2],
        actual_costs=[3, 2],
    )
    assert [(line["cost_estimated"], line["cost_actual"]) for line in lines(caplog)] == [(10, 3), (2, 2)]


def test_a_rejection_before_analysis_logs_what_is_known(
    access_log: AccessLog, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="req-2")
    ctx.payload = {"query": MUTATION, "operationName": "Touch"}
    access_log.record(ctx, status=401, duration=0.0005, upstream_duration=None, error_code="invalid-jwt")
    [line] = lines(caplog)
    assert line["status"] == 401
    assert line["error_code"] == "invalid-jwt"
    assert line["operation_type"] is None
    assert line["operation_name"] == "Touch"
    assert line["operation_hash"] == operation_hash(MUTATION)
    assert line["role"] is None and line["key_id"] is None and line["plan"] is None


def test_an_unparseable_body_still_logs_one_line(access_log: AccessLog, caplog: pytest.LogCaptureFixture) -> None:
    ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="req-3")
    access_log.record(ctx, status=400, duration=0.0001, upstream_duration=None, error_code="bad-request")
    [line] = lines(caplog)
    assert line["operation_hash"] is None and line["operation_name"] is None


def test_user_id_can_be_left_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.access")
    AccessLog(include_user_id=False).record(
        context({"query": QUERY}), status=200, duration=0.001, upstream_duration=None, error_code=None
    )
    [line] = lines(caplog)
    assert line["user_id"] is None


def test_sampling_drops_successes_but_never_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.access")
    sampled = AccessLog(sample_rate=0.25, random_source=iter([0.1, 0.9, 0.3, 0.2] * 10).__next__)
    ctx = context({"query": QUERY})
    for _ in range(4):
        sampled.record(ctx, status=200, duration=0.001, upstream_duration=None, error_code=None)
    assert len(lines(caplog)) == 2
    sampled.record(ctx, status=429, duration=0.001, upstream_duration=None, error_code="rate-limited")
    sampled.record(ctx, status=200, duration=0.001, upstream_duration=None, error_code="upstream-error")
    assert len(lines(caplog)) == 4


def test_nothing_is_built_when_info_is_disabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edge.access")
    AccessLog().record(context({"query": QUERY}), status=200, duration=0.001, upstream_duration=None, error_code=None)
    assert lines(caplog) == []


def test_sample_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        AccessLog(sample_rate=1.5)


def test_operation_hash_is_cached_and_stable() -> None:
    assert operation_hash("{ a }") == hashlib.sha256(b"{ a }").hexdigest()[:16]
    assert operation_hash("{ a }") is operation_hash("{ a }")


def test_the_formatter_stamps_each_line_with_its_own_time() -> None:
    """The second's text is reused within a second and replaced when the second changes."""
    formatter = JsonFormatter()
    stamps = []
    for created in (1795000000.25, 1795000000.75, 1795000001.5, 1794999999.0):
        record = logging.LogRecord("edge.access", logging.INFO, __file__, 1, EVENT, None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        stamps.append(orjson.loads(formatter.format(record))["ts"])
    assert stamps == [
        "2026-11-18T11:06:40.250Z",
        "2026-11-18T11:06:40.750Z",
        "2026-11-18T11:06:41.500Z",
        "2026-11-18T11:06:39.000Z",
    ]


# --- WebSocket operations ---------------------------------------------------------------------------------

WEBSOCKET_FIELDS = FIELDS | {"transport", "operation_id", "outcome"}


def websocket_line(access_log: AccessLog, **overrides: Any) -> None:
    session = Session("user", {"x-hasura-user-id": "u-42", "x-hasura-org": VARIABLE}, "u-42")
    fields: dict[str, Any] = {
        "request_id": "conn-7",
        "operation_id": "sub-1",
        "operation_type": "subscription",
        "operation_name": "Live",
        "query": "subscription Live { users { id } }",
        "identity": Identity(session, "api_key", api_key()),
        "plan": "pro",
        "status": 200,
        "outcome": "stopped",
        "error_code": None,
        "duration": 42.5,
        "cost_estimated": 5,
    }
    fields.update(overrides)
    access_log.record_websocket(EndedOperation(**fields))


def test_a_websocket_operation_gives_one_line_with_the_http_fields_and_its_own(
    access_log: AccessLog, caplog: pytest.LogCaptureFixture
) -> None:
    websocket_line(access_log)
    [line] = lines(caplog)
    assert set(line) - {"ts", "level", "logger", "event"} == WEBSOCKET_FIELDS
    assert (line["event"], line["logger"]) == ("graphql_operation", "edge.access")
    assert {key: line[key] for key in WEBSOCKET_FIELDS} == {
        "request_id": "conn-7",
        "operation_id": "sub-1",
        "transport": "websocket",
        "outcome": "stopped",
        "batch_index": None,
        "operation_type": "subscription",
        "operation_name": "Live",
        "operation_hash": operation_hash("subscription Live { users { id } }"),
        "role": "user",
        "plan": "pro",
        "key_id": "key_abc123",
        "user_id": "u-42",
        "cost_estimated": 5,
        "request_cost_estimated": 5,
        "cost_actual": None,
        "status": 200,
        "error_code": None,
        "duration_ms": 42500.0,
        "upstream_ms": None,
    }


def test_a_websocket_refusal_before_analysis_and_without_a_user_id_setting(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.access")
    refused = {"operation_type": None, "operation_name": None, "cost_estimated": None, "plan": ""}
    websocket_line(AccessLog(include_user_id=False), status=400, outcome="refused", error_code="bad-request", **refused)
    [line] = lines(caplog)
    assert (line["operation_type"], line["operation_name"], line["plan"], line["user_id"]) == (None, None, None, None)
    assert (line["status"], line["outcome"], line["error_code"]) == (400, "refused", "bad-request")


def test_websocket_lines_are_sampled_like_http_ones(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.access")
    sampled = AccessLog(sample_rate=0.25, random_source=iter([0.1, 0.9, 0.3, 0.2] * 10).__next__)
    for _ in range(4):
        websocket_line(sampled)
    assert len(lines(caplog)) == 2
    websocket_line(sampled, status=429, outcome="refused", error_code="rate-limited")
    websocket_line(sampled, status=502, outcome="aborted", error_code="upstream-unavailable")
    assert len(lines(caplog)) == 4


def test_no_variables_tokens_or_query_text_in_a_websocket_line(access_log: AccessLog) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("edge.access")
    logger.addHandler(handler)
    try:
        websocket_line(access_log, operation_id="x" * 300)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert output.count("\n") == 1
    for secret in (RAW_KEY, VARIABLE, "users { id }"):
        assert secret not in output
    assert orjson.loads(output)["operation_id"] == "x" * 128


# --- the edge's JSON handler writing lines directly ------------------------------------------------------


@pytest.fixture
def own_handler() -> Iterator[tuple[JsonLineHandler, io.StringIO]]:
    """A logger tree configured as configure_logging configures the root, on loggers of its own (pytest's
    capture handlers sit on the root): ``direct-test`` does not propagate, and :func:`only` gives it a
    JsonLineHandler for worker 3, so ``direct-test.access`` is written by that handler alone."""
    stream = io.StringIO()
    handler = JsonLineHandler(stream, worker=3)
    parent = logging.getLogger("direct-test")
    parent.propagate = False
    parent.setLevel(logging.INFO)
    yield handler, stream
    parent.handlers[:] = []
    parent.propagate = True
    parent.setLevel(logging.NOTSET)


def only(handler: JsonLineHandler) -> None:
    """Inside the test: pytest may attach its capture handlers to the logger as the test starts."""
    logging.getLogger("direct-test").handlers[:] = [handler]


def test_the_direct_line_is_the_line_logging_writes(own_handler: tuple[JsonLineHandler, io.StringIO]) -> None:
    handler, stream = own_handler
    only(handler)
    access_log = AccessLog("direct-test.access")
    ctx = context({"query": QUERY, "operationName": "Users", "variables": {"x": VARIABLE}})
    assert json_line_handler(access_log.chain) is handler
    access_log.record(ctx, status=200, duration=0.0123, upstream_duration=0.004, error_code=None, actual_costs=[7])
    handler.addFilter(lambda record: True)  # configured through logging: the record takes the usual path
    assert json_line_handler(access_log.chain) is None
    access_log.record(ctx, status=200, duration=0.0123, upstream_duration=0.004, error_code=None, actual_costs=[7])
    direct, through_logging = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert list(direct) == list(through_logging)  # the same keys in the same order, worker last
    assert list(direct)[:4] == ["ts", "level", "logger", "event"]
    assert set(direct) - {"ts", "level", "logger", "event", "worker"} == FIELDS
    del direct["ts"], through_logging["ts"]
    assert direct == through_logging
    assert direct["worker"] == 3 and direct["logger"] == "direct-test.access" and direct["level"] == "info"


def test_a_websocket_line_written_directly_has_its_fields(own_handler: tuple[JsonLineHandler, io.StringIO]) -> None:
    handler, stream = own_handler
    only(handler)
    websocket_line(AccessLog("direct-test.access"))
    [line] = [orjson.loads(text) for text in stream.getvalue().splitlines()]
    assert set(line) - {"ts", "level", "logger", "event", "worker"} == WEBSOCKET_FIELDS
    assert line["outcome"] == "stopped"


def test_anything_configured_through_logging_gets_the_record(own_handler: tuple[JsonLineHandler, io.StringIO]) -> None:
    handler, stream = own_handler
    only(handler)
    access_log = AccessLog("direct-test.access")
    ctx = context({"query": QUERY, "operationName": "Users"})
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    extra = Collect()
    logging.getLogger("direct-test.access").addHandler(extra)
    try:
        assert json_line_handler(access_log.chain) is None
        access_log.record(ctx, status=200, duration=0.001, upstream_duration=None, error_code=None)
    finally:
        logging.getLogger("direct-test.access").removeHandler(extra)
    assert [record.getMessage() for record in seen] == [EVENT]
    assert stream.getvalue().count("\n") == 1  # and the edge's handler still wrote its line
    handler.setLevel(logging.WARNING)  # a level on the handler is obeyed too
    assert json_line_handler(access_log.chain) is None
    access_log.record(ctx, status=200, duration=0.001, upstream_duration=None, error_code=None)
    assert stream.getvalue().count("\n") == 1


class CountingStream(io.StringIO):
    """Counts ``write`` calls: the handler's lines of one event-loop turn make one."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_the_lines_of_a_turn_are_one_write_at_its_end_and_records_keep_their_place() -> None:
    stream = CountingStream()
    handler = JsonLineHandler(stream, worker=None)
    record = logging.LogRecord("edge", logging.WARNING, __file__, 1, "between", None, None)
    seen: list[str] = []

    async def one_turn() -> None:
        handler.write_encoded("a\n")
        handler.write_encoded("b\n")
        seen.append(stream.getvalue())  # held for the end of the turn
        handler.handle(record)  # a record the usual way: the lines before it are written first
        seen.append(stream.getvalue())
        handler.write_encoded("c\n")  # after that write: a write of its own at the turn's end
        handler.write_encoded("d\n")
        seen.append(stream.getvalue())
        await asyncio.sleep(0)

    asyncio.run(one_turn())
    lines = stream.getvalue().splitlines()
    assert seen[0] == ""
    assert seen[1].splitlines()[:2] == ["a", "b"] and seen[2] == seen[1]
    assert lines[:2] == ["a", "b"] and orjson.loads(lines[2])["event"] == "between" and lines[3:] == ["c", "d"]
    assert stream.writes == 3  # a and b; the record; c and d
    assert handler.pending == []


def test_outside_a_running_loop_a_line_is_written_at_once() -> None:
    stream = CountingStream()
    handler = JsonLineHandler(stream, worker=None)
    handler.write_encoded("a\n")
    assert stream.getvalue() == "a\n"
    handler.write_encoded("b\n")
    assert stream.getvalue() == "a\nb\n" and stream.writes == 2
