"""The access log's line encoded directly is the line ``logging`` and ``JsonFormatter`` write, byte for byte.

``AccessLog`` builds its line as text (``LineEncoder``, and the parts it keeps encoded per user and per query)
when the edge's own JSON handler alone would write it; through ``logging`` the formatter builds it from a
``LogRecord``. Generated values and requests, one at a time and in sequences through one ``AccessLog``, check that
the two never differ, so the documented format cannot drift between the paths.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge.context import RequestContext
from edge.graphql.analysis import OperationAnalysis, analyse
from edge.keys.model import ApiKey
from edge.logs import JsonLineHandler
from edge.observability.access_log import (
    EVENT,
    HTTP_FIELDS,
    WEBSOCKET_FIELDS,
    AccessLog,
    LineEncoder,
    Unencodable,
    json_line_handler,
    milliseconds,
)
from edge.observability.ws_operation import EndedOperation
from edge.session import Identity, Session

values = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet=st.characters(codec="ascii")),
    st.integers(),
    st.integers(min_value=-10, max_value=2_000),
    st.floats(),
    st.floats(min_value=0, max_value=1e7).map(lambda ms: round(ms, 3)),
    st.integers(min_value=0, max_value=10**13).map(lambda thousandths: thousandths / 1000),
    st.floats(min_value=0, max_value=1e7, allow_nan=False).map(milliseconds),
    st.booleans(),
)
workers = st.one_of(st.none(), st.integers(min_value=0, max_value=64))
# Epoch seconds over several centuries, to the microsecond (the milliseconds and the second's text both vary).
times = st.integers(min_value=0, max_value=10**16).map(lambda micros: micros / 1e6)


def formatted(logger: str, worker: int | None, created: float, fields: dict[str, Any]) -> str:
    """The line ``logging.getLogger(logger).info(EVENT, extra=fields)`` writes through a JsonLineHandler of
    ``worker``: the record made as ``Logger`` makes it, the handler's filters, its formatter."""
    handler = JsonLineHandler(io.StringIO(), worker)
    record = logging.getLogger(logger).makeRecord(logger, logging.INFO, "", 0, EVENT, (), None, extra=fields)
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0  # as LogRecord sets them
    assert handler.filter(record)
    return handler.format(record) + "\n"


@settings(max_examples=600, deadline=None)
@given(
    names=st.sampled_from([HTTP_FIELDS, WEBSOCKET_FIELDS]),
    data=st.data(),
    worker=workers,
    created=times,
    logger=st.sampled_from(["edge.access", "direct-test.access", 'odd "logger" é']),
)
def test_the_encoded_line_is_the_formatted_line(
    names: tuple[str, ...], data: st.DataObject, worker: int | None, created: float, logger: str
) -> None:
    line_values: list[object] = [data.draw(values, label=name) for name in names]
    fields = dict(zip(names, line_values, strict=True))
    try:
        encoder = LineEncoder(logger, EVENT, worker)
        if names is HTTP_FIELDS:
            line = encoder.http_line(created, line_values)
        else:
            line = encoder.websocket_line(created, line_values)
    except Unencodable:
        # Only where orjson refuses a value (a lone surrogate, an integer past 64 bits): the record then goes
        # through logging, whose formatter has its own fallback.
        with pytest.raises(TypeError):
            orjson.dumps(fields, default=str)
        return
    assert line == formatted(logger, worker, created, fields)


def test_the_timestamp_changes_with_the_second_and_the_millisecond() -> None:
    encoder = LineEncoder("edge.access", EVENT, None)
    stamps = [encoder.start(created)[:32] for created in (1795000000.25, 1795000000.999, 1795000001.0, 1.0)]
    assert stamps == [
        '{"ts":"2026-11-18T11:06:40.250Z"',
        '{"ts":"2026-11-18T11:06:40.999Z"',
        '{"ts":"2026-11-18T11:06:41.000Z"',
        '{"ts":"1970-01-01T00:00:01.000Z"',
    ]


@given(st.floats(min_value=0, max_value=1e6, exclude_max=True))
def test_milliseconds_are_the_duration_to_the_microsecond(seconds: float) -> None:
    assert abs(milliseconds(seconds) - seconds * 1000) <= 0.0005 + seconds * 1e-12
    assert milliseconds(seconds) == round(milliseconds(seconds), 3)


# --- whole requests through AccessLog: written directly, and through logging -------------------------------

_TS = re.compile(rb'^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"')

names = st.one_of(st.none(), st.text(max_size=200), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,150}", fullmatch=True))
queries = st.sampled_from(
    [
        "query Users { users { id } }",
        "mutation Touch { touch { id } }",
        "subscription Live { live { id } }",
        "{ a }",
        'query Q { a(s: "ünï\\"code") }',
    ]
)
operations = st.fixed_dictionaries({"query": queries}, optional={"operationName": names})
requests = st.fixed_dictionaries(
    {
        "request_id": st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=64)),
        "role": st.text(max_size=40),
        "user_id": st.one_of(st.none(), st.text(max_size=80)),
        "plan": st.one_of(st.just(""), st.text(max_size=20)),
        "operations": st.lists(operations, min_size=1, max_size=4),
        "batch": st.booleans(),
        "analysed": st.booleans(),
        "estimated": st.integers(min_value=0, max_value=10**12),
        "status": st.sampled_from([200, 400, 401, 429, 500, 502]),
        "error_code": st.one_of(st.none(), st.sampled_from(["rate-limited", "invalid-jwt", "upstream-unavailable"])),
        "duration": st.floats(min_value=0, max_value=600, allow_nan=False),
        "upstream": st.one_of(st.none(), st.floats(min_value=0, max_value=600, allow_nan=False)),
        "costs": st.one_of(st.none(), st.lists(st.integers(min_value=0, max_value=10**6), max_size=4)),
        "include_user_id": st.booleans(),
    }
)


@pytest.fixture
def both_paths() -> Iterator[tuple[JsonLineHandler, io.StringIO]]:
    """``direct-test`` configured as configure_logging configures the root (pytest's capture handlers sit on
    the root, so this tree does not propagate to it)."""
    stream = io.StringIO()
    handler = JsonLineHandler(stream, worker=2)
    parent = logging.getLogger("direct-test")
    parent.propagate = False
    parent.setLevel(logging.INFO)
    yield handler, stream
    parent.handlers[:] = []
    parent.propagate = True
    parent.setLevel(logging.NOTSET)


@functools.cache
def analysed(query: str) -> OperationAnalysis:
    """One analysis object per query, as the edge's analyser keeps them (the access log keeps fields by it)."""
    return analyse(query, None, max_tokens=1_000)


def request_context(request: dict[str, Any]) -> RequestContext:
    ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id=request["request_id"])
    ctx.is_batch = request["batch"]
    ctx.payload = request["operations"] if request["batch"] else request["operations"][0]
    session = Session(request["role"], {}, request["user_id"])
    key_id = request.get("key_id")
    if key_id is None:
        ctx.identity = Identity(session, "jwt", None)
    else:
        key = ApiKey(uuid4(), key_id, "acme", "pro", None, {}, datetime(2026, 11, 1, tzinfo=UTC), None, None, None)
        ctx.identity = Identity(session, "api_key", key)
    ctx.plan_name = request["plan"]
    ctx.estimated_cost = request["estimated"]
    if request["analysed"]:
        ops = request["operations"] if request["batch"] else request["operations"][:1]
        ctx.analyses = [analysed(op["query"]) for op in ops]
    return ctx


def written(handler: JsonLineHandler, stream: io.StringIO, access_log: AccessLog, request: dict[str, Any]) -> bytes:
    logging.getLogger("direct-test").handlers[:] = [handler]
    start = stream.tell()
    access_log.record(
        request_context(request),
        status=request["status"],
        duration=request["duration"],
        upstream_duration=request["upstream"],
        error_code=request["error_code"],
        estimated_costs=request["costs"],
        actual_costs=request["costs"],
    )
    handler.flush()
    return stream.getvalue()[start:].encode("utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests)
@example(
    request={
        "request_id": "req-1",
        "role": 'us"er\n',
        "user_id": "ü\x00",
        "plan": "",
        "operations": [{"query": "{ a }", "operationName": "N" * 300}],
        "batch": False,
        "analysed": False,
        "estimated": 2**70,  # past orjson's integers: both paths write what the formatter writes
        "status": 200,
        "error_code": None,
        "duration": 1e-9,
        "upstream": None,
        "costs": None,
        "include_user_id": True,
    }
)
def test_a_request_logged_directly_gives_the_lines_logging_gives(
    both_paths: tuple[JsonLineHandler, io.StringIO], request: dict[str, Any]
) -> None:
    handler, stream = both_paths
    access_log = AccessLog("direct-test.access", include_user_id=request["include_user_id"])
    direct = written(handler, stream, access_log, request).splitlines()
    handler.addFilter(lambda record: True)  # anything configured through logging: the record's path
    try:
        through_logging = written(handler, stream, access_log, request).splitlines()
    finally:
        handler.filters.pop()
    assert len(direct) == len(request["operations"]) if request["batch"] else 1
    assert len(direct) == len(through_logging)
    for one, other in zip(direct, through_logging, strict=True):
        # The same bytes after the timestamp, which is the time of each call.
        assert _TS.match(one) and _TS.match(other)
        assert one[32:] == other[32:]


# One AccessLog for a whole sequence of requests: what it keeps encoded between requests (a user's fields, a
# query's fields, the request ids' prefix) is used again with other values around it, and some of what it kept
# then no longer applies (another role or plan for the same user id, another name for the same query).
_PREFIX = "1b2c3d4e-5f60-4718-8a9b-"  # the form of edge.http.request_id's ids: 24 characters, then 12
kept_requests = st.fixed_dictionaries(
    {
        "request_id": st.sampled_from(
            [
                _PREFIX + "0123456789ab",
                _PREFIX + "ffffffffffff",
                _PREFIX + "0123456789é1",  # letters beyond ASCII need no escape either
                _PREFIX + '0123456789a"',
                _PREFIX + "0123456789a\\",
                _PREFIX + "0123456789a-",
                _PREFIX + "0123456789a\n",
                _PREFIX + "0123456789abc",  # 37 characters
                '1b2c3d4e-5f60-4718-8a9b"0123456789ab',  # the same length, another prefix
                "req-1",
                'x"' * 18,
            ]
        ),
        "role": st.sampled_from(["user", "editor", 'us"er']),
        "user_id": st.sampled_from([None, "u-1", "u-2", "user", "key-1"]),
        "key_id": st.sampled_from([None, "key-1", "key-2"]),
        "plan": st.sampled_from(["", "pro", "free"]),
        "operations": st.lists(
            st.fixed_dictionaries(
                {"query": queries}, optional={"operationName": st.sampled_from(["Users", "Other", "ünï", "N" * 130])}
            ),
            min_size=1,
            max_size=3,
        ),
        "batch": st.booleans(),
        "analysed": st.booleans(),
        "estimated": st.sampled_from([0, 7, 1023, 1024, 10**12, 2**64 - 1, 2**64]),
        "status": st.sampled_from([0, 200, 429, 599, 600, 999]),
        "error_code": st.sampled_from([None, None, "rate-limited"]),
        "duration": st.sampled_from([0.0, -0.0, 1e-9, 0.0123456, 0.999999, 1.0, 600.0, 999_999.9999, 1e6, 2e9]),
        "upstream": st.sampled_from([None, 0.0, 0.004, 0.0005, 1e7]),
        # A cost past orjson's integers takes that one line through logging (after the lines before it).
        "costs": st.sampled_from([None, [], [3], [0, 5, 7], [1, 2**70], [2**64 - 1, 1024]]),
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(kept_requests, min_size=1, max_size=12), include_user_id=st.booleans())
def test_lines_from_kept_parts_are_the_lines_logging_gives(
    both_paths: tuple[JsonLineHandler, io.StringIO], sequence: list[dict[str, Any]], include_user_id: bool
) -> None:
    handler, stream = both_paths
    direct_log = AccessLog("direct-test.access", include_user_id=include_user_id)
    logging_log = AccessLog("direct-test.access", include_user_id=include_user_id)
    for request in sequence:
        logging.getLogger("direct-test").handlers[:] = [handler]
        assert json_line_handler(direct_log.chain) is handler
        direct = written(handler, stream, direct_log, request).splitlines()
        handler.addFilter(lambda record: True)
        try:
            through_logging = written(handler, stream, logging_log, request).splitlines()
        finally:
            handler.filters.pop()
        assert len(direct) == len(through_logging) == (len(request["operations"]) if request["batch"] else 1)
        for one, other in zip(direct, through_logging, strict=True):
            assert _TS.match(one) and _TS.match(other)
            assert one[32:] == other[32:]


def test_each_request_id_is_written_as_its_json_whatever_ids_came_before(
    both_paths: tuple[JsonLineHandler, io.StringIO],
) -> None:
    handler, stream = both_paths
    access_log = AccessLog("direct-test.access")
    unsafe_prefix = '1b2c3d4e-5f60-4718-8a9b"'  # 24 characters too, with a quote
    ids = [
        _PREFIX + "0123456789ab",
        unsafe_prefix + "0123456789ab",
        unsafe_prefix + "ffffffffffff",
        _PREFIX + '0123456789a"',
        _PREFIX + "ffffffffffff",
    ]
    request = {
        "role": "user",
        "user_id": "u-1",
        "plan": "pro",
        "operations": [{"query": "{ a }"}],
        "batch": False,
        "analysed": False,
        "estimated": 1,
        "status": 200,
        "error_code": None,
        "duration": 0.001,
        "upstream": None,
        "costs": None,
    }
    lines = [written(handler, stream, access_log, {**request, "request_id": one}) for one in ids]
    assert [orjson.loads(line)["request_id"] for line in lines] == ids


def test_a_websocket_line_logged_directly_is_the_line_logging_gives(
    both_paths: tuple[JsonLineHandler, io.StringIO],
) -> None:
    handler, stream = both_paths
    logging.getLogger("direct-test").handlers[:] = [handler]
    ended = EndedOperation(
        request_id="conn-7",
        operation_id="é" * 200,
        operation_type="subscription",
        operation_name="Live",
        query="subscription Live { users { id } }",
        identity=Identity(Session("user", {}, "u-42"), "jwt", None),
        plan="pro",
        status=200,
        outcome="stopped",
        error_code=None,
        duration=42.5,
        cost_estimated=5,
    )
    access_log = AccessLog("direct-test.access")
    access_log.record_websocket(ended)
    handler.addFilter(lambda record: True)
    access_log.record_websocket(ended)
    direct, through_logging = stream.getvalue().encode("utf-8").splitlines()
    assert direct[32:] == through_logging[32:]
    assert orjson.loads(direct)["operation_id"] == "é" * 128
