"""A lean Redis client for the limiter's and cost budget's Lua scripts: RESP2 over one asyncio ``Protocol``.

Why not redis-py here: each script call through redis-py's asyncio client costs about 350,000 interpreted
instructions (its connection pool, retry wrapper, per-read socket timeouts, response callbacks), so the
limits in Redis cost about a million instructions per request over the in-memory stores
(``docs/benchmarks.md``, "Redis-backed limits"). This client does only what the two stores need:

- One connection to one server (``redis://`` or ``rediss://``), **pipelined**: a command is written at
  once when it is alone in flight, else with the others of its event-loop turn in one ``write``, and the
  replies are matched to the callers in order (FIFO), so concurrent requests share the connection
  without waiting for each other's round trips.
- ``EVALSHA``; on ``NOSCRIPT`` (a restarted or flushed server) ``SCRIPT LOAD`` and ``EVALSHA`` again,
  written together, exactly once. The SHA-1 is computed here, as Redis does.
- ``AUTH`` (``[user[:password]@]`` of the URL, percent-decoded) and ``SELECT`` (the URL's ``/db``) on
  every new connection; TLS for ``rediss://`` with the same context redis-py builds from the same URL
  (``ssl_cert_reqs`` default ``required``, ``ssl_check_hostname`` default on, ``ssl_ca_certs``,
  ``ssl_ca_path``, ``ssl_certfile``, ``ssl_keyfile`` from the query string, else the system's CAs).
- Timeouts: connecting (TCP, TLS, AUTH, SELECT) is capped at ``connect_timeout``, and each call at its
  ``timeout`` from the moment it is made. One timer per connection keeps the deadlines. A call that
  times out **drops the connection**: Redis answers in order, so the calls still waiting behind it
  cannot have been answered either; they fail with it, and a late reply is never given to anyone. A
  caller cancelled from outside just leaves its slot, whose reply is read and discarded.
- After any failure (refused, reset, timed out, a reply that does not parse) the next call opens a new
  connection: no restart, no retry of the failed call, no backoff (the stores decide what a failure
  means, and a request must not wait for retries).
- The stores' hot paths write their commands themselves, already encoded (``LuaScript.head``, ``bulk``):
  the limiter awaits its reply's future from ``ready()``'s connection (``settle`` after ``NOSCRIPT``), and a
  refund nobody waits for gives a ``ReplyCallback`` instead of a future. A coroutine or future per call
  costs more than the rest of a call on the request path.

Replies are parsed as RESP2: integers (``int``), simple strings and bulk strings (``bytes``), nil
(``None``), arrays (``list``) and errors (``RedisReplyError``, raised to the caller). Messages of the
exceptions name the server as ``host:port``, never the URL (it may hold a password).

``LeanRedis.from_url`` reads ``redis://`` and ``rediss://`` URLs with no query parameters other than
``db`` and the ``ssl_*`` ones above; ``lean_url_supported`` says whether a URL is one of those. The
edge uses this client for the two limit stores on such URLs and redis-py for everything else
(``edge.redis_topology``).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "LeanRedis",
    "LuaScript",
    "NoScriptError",
    "RedisReplyError",
    "ReplyCallback",
    "RespProtocolError",
    "bulk",
    "encode_args",
    "lean_url_supported",
    "parse_reply",
]

Arg = str | int | float | bytes
ScriptArg = str | int
"""A script's argument: a float goes as text (``repr``), as the stores send them."""

_SSL_QUERY: Final = frozenset(
    {"ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"}
)
_CERT_REQS: Final = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_FALSE_STRINGS: Final = frozenset({"0", "F", "FALSE", "N", "NO"})  # redis-py's to_bool
_CRLF: Final = b"\r\n"
_EPSILON: Final = 0.001  # a timer may fire up to the loop's clock resolution early


class RedisReplyError(Exception):
    """An error reply (``-ERR ...``): the command failed, the connection is fine."""


class NoScriptError(RedisReplyError):
    """``-NOSCRIPT``: the server does not know the script's SHA-1 (restart, failover, ``SCRIPT FLUSH``)."""


class RespProtocolError(Exception):
    """The server sent bytes that are not RESP2: the connection is dropped."""


class _Incomplete:
    """The buffer ends before the reply does."""


INCOMPLETE: Final = _Incomplete()


def _error(line: bytes) -> RedisReplyError:
    message = line.decode("utf-8", "replace")
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return RedisReplyError(message)


def parse_reply(buf: bytes, pos: int) -> tuple[object, int]:
    """One RESP2 reply starting at ``buf[pos]``: (value, position after it), or (``INCOMPLETE``, ``pos``).

    Error replies are returned (as ``RedisReplyError``), not raised. Raises ``RespProtocolError`` for
    bytes that are not RESP2.
    """
    size = len(buf)
    kind = buf[pos] if pos < size else 0
    if kind == 36 or kind == 58:  # $ bulk string, : integer: the scripts' replies, read without find() or int()
        # Only digits (a ':' may start with '-') then CRLF; anything else is left to the general case below.
        at = pos + 1
        negative = kind == 58 and at < size and buf[at] == 45
        if negative:
            at += 1
        first = at
        value = 0
        while at < size:
            digit = buf[at] - 48
            if digit < 0 or digit > 9:
                break
            value = value * 10 + digit
            at += 1
        if at == size or (at + 1 == size and buf[at] == 13):  # only digits so far, the line goes on
            return INCOMPLETE, pos
        if buf[at] == 13 and buf[at + 1] == 10 and 0 < at - first <= 18:
            if kind == 58:
                return (-value if negative else value), at + 2
            start = at + 2
            stop = start + value
            if size < stop + 2:
                return INCOMPLETE, pos
            if buf[stop] != 13 or buf[stop + 1] != 10:
                raise RespProtocolError("a bulk string longer than its length")
            return buf[start:stop], stop + 2
    end = buf.find(_CRLF, pos)
    if end < 0:
        return INCOMPLETE, pos
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        length = _length(buf, pos + 1, end)
        if length < 0:
            return None, end + 2
        start = end + 2
        stop = start + length
        if len(buf) < stop + 2:
            return INCOMPLETE, pos
        if buf[stop : stop + 2] != _CRLF:
            raise RespProtocolError("a bulk string longer than its length")
        return buf[start:stop], stop + 2
    if kind == 58:  # : integer
        return _length(buf, pos + 1, end), end + 2
    if kind == 43:  # + simple string
        return buf[pos + 1 : end], end + 2
    if kind == 45:  # - error
        return _error(buf[pos + 1 : end]), end + 2
    if kind == 42:  # * array
        count = _length(buf, pos + 1, end)
        if count < 0:
            return None, end + 2
        items: list[object] = []
        at = end + 2
        for _ in range(count):
            item, at = parse_reply(buf, at)
            if item is INCOMPLETE:
                return INCOMPLETE, pos
            items.append(item)
        return items, at
    raise RespProtocolError(f"unexpected RESP type byte {kind!r}")


def _length(buf: bytes, start: int, end: int) -> int:
    text = buf[start:end]
    try:
        return int(text)
    except ValueError:
        raise RespProtocolError(f"not a RESP integer: {text[:32]!r}") from None


def _arg(value: Arg) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    return repr(value).encode()


def encode_command(parts: Sequence[Arg]) -> bytes:
    """A RESP2 array of bulk strings: how clients send commands."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = _arg(part)
        out.append(b"$%d\r\n" % len(data))
        out.append(data)
        out.append(_CRLF)
    return b"".join(out)


def bulk(data: bytes) -> bytes:
    """``data`` as a RESP bulk string: one key or argument of a command."""
    return b"$%d\r\n%s\r\n" % (len(data), data)


_ARGS_CACHE_MAX: Final = 1024


def encode_args(args: tuple[ScriptArg, ...]) -> bytes:
    """A script's arguments as RESP bulk strings, as ``LuaScript.evalsha_command`` writes them after the keys."""
    out = []
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:  # a float would share a cache entry with the int it equals (1.0 == 1): pass repr(x)
            raise TypeError(f"script arguments are str or int, not {type(arg).__name__}")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class LuaScript:
    """A script's source and SHA-1, and its ``EVALSHA`` and ``SCRIPT LOAD`` commands as bytes.

    Encoding a command in Python costs more than the rest of a call (about 45,000 interpreted
    instructions for the limiter's ten arguments), and the arguments other than the keys repeat: the
    plan's figures, an empty ``now``, one operation. So each distinct ``args`` tuple is encoded once
    (up to 1,024 of them per script, then the cache starts again) and only the keys each time.

    ``cache=False`` is for a script whose calls never repeat their arguments (the usage meter's flush:
    thousands of keys and arguments per call): each command is encoded whole and nothing is kept.
    """

    __slots__ = ("_args", "_heads", "cache", "load_command", "sha", "source")

    def __init__(self, source: str, *, cache: bool = True) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.load_command = encode_command(("SCRIPT", "LOAD", source))
        self.cache = cache
        self._args: dict[tuple[ScriptArg, ...], bytes] = {}
        self._heads: dict[int, bytes] = {}

    def evalsha_command(self, keys: Sequence[str], args: tuple[ScriptArg, ...]) -> bytes:
        """``EVALSHA sha numkeys *keys *args`` as RESP."""
        if not self.cache:
            return self._uncached_command(keys, args)
        encoded = self._args.get(args)
        if encoded is None:
            encoded = encode_args(args)
            if len(self._args) >= _ARGS_CACHE_MAX:
                self._args.clear()
            self._args[args] = encoded
        count = len(keys)
        head = self.head(count, len(args))
        # One %-format for the whole command (the stores pass one or two keys): a third of a loop's cost.
        if count == 2:
            first, second = keys[0].encode(), keys[1].encode()
            return _TWO_KEYS % (head, len(first), first, len(second), second, encoded)
        if count == 1:
            only = keys[0].encode()
            return _ONE_KEY % (head, len(only), only, encoded)
        parts = [head]
        for key in keys:
            data = key.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        parts.append(encoded)
        return b"".join(parts)

    def _uncached_command(self, keys: Sequence[str], args: tuple[ScriptArg, ...]) -> bytes:
        parts = [self.head(len(keys), len(args))]
        for key in keys:
            data = key.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        parts.append(encode_args(args))
        return b"".join(parts)

    def head(self, numkeys: int, numargs: int) -> bytes:
        """The start of ``EVALSHA sha numkeys`` with ``numkeys`` keys and ``numargs`` arguments to follow, as RESP:
        a caller that encodes its keys and arguments itself (``bulk``) appends them."""
        shape = numkeys << 16 | numargs
        head = self._heads.get(shape)
        if head is None:
            count = b"%d" % numkeys
            head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$%d\r\n%s\r\n" % (
                3 + numkeys + numargs,
                self.sha.encode(),
                len(count),
                count,
            )
            if self.cache and numkeys < 1 << 16 and numargs < 1 << 16:  # a few shapes per script
                self._heads[shape] = head
        return head


_ONE_KEY: Final = b"%s$%d\r\n%s\r\n%s"
_TWO_KEYS: Final = b"%s$%d\r\n%s\r\n$%d\r\n%s\r\n%s"


class ReplyCallback:
    """A caller that does not wait for its reply (the refund): no future, no task. ``replied`` gets the reply
    (an error reply as a ``RedisReplyError`` value, ``NoScriptError`` included), ``failed`` the exception that
    ended the connection (lost, timed out); one of them, once. They run inside the connection's callbacks, so
    they must not raise and must not wait."""

    def replied(self, reply: object) -> None:
        raise NotImplementedError

    def failed(self, exc: Exception) -> None:
        raise NotImplementedError


Waiter = asyncio.Future[object] | ReplyCallback


class _Connection(asyncio.Protocol):
    """One connection: commands written as they come, replies handed out in order (FIFO).

    A command is written at once when no other is in flight; otherwise it joins the others written in
    the same event-loop turn, sent in one ``write`` at the end of the turn (one system call instead of
    one per request, and one read for their replies: about 20 % less CPU per request with 8 in flight,
    ``docs/benchmarks.md``). Nothing is ever written ahead of a command waiting for that write.

    ``pending`` holds one (waiter, deadline) per command written and not yet answered: the waiter is the
    future of the reply, or a ``ReplyCallback``. One timer, armed lazily (``timer_at``), fires at the earliest
    deadline among them: a call answered in time costs no timer of its own, and the timer left behind by an
    answered call re-arms itself for the next one.
    """

    __slots__ = ("buffer", "client", "closed", "loop", "out", "pending", "timer", "timer_at", "transport")

    def __init__(self, client: LeanRedis, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.out: list[bytes] = []
        self.closed = False
        self.pending: collections.deque[tuple[Waiter, float]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0

    def request(self, data: bytes, deadline: float) -> asyncio.Future[object]:
        """Write one command (``data``, encoded): the future of its reply."""
        fut: asyncio.Future[object] = self.loop.create_future()
        self.write(data, fut, deadline)
        return fut

    def write(self, data: bytes, waiter: Waiter, deadline: float) -> None:
        """Write one command (``data``, encoded) whose reply goes to ``waiter``."""
        if self.closed:
            raise ConnectionError(f"connection to Redis {self.client.address} is closed")
        pending = self.pending
        pending.append((waiter, deadline))
        timer = self.timer
        if timer is None or self.timer_at > deadline:
            if timer is not None:
                timer.cancel()
            self.timer_at = deadline
            self.timer = self.loop.call_at(deadline, self._check_deadlines)
        out = self.out
        if out:  # a write is already due at the end of this loop turn: join it
            out.append(data)
        elif len(pending) == 1:  # nothing else in flight: write now (no callback, no wait)
            self.transport.write(data)  # type: ignore[union-attr]  # set by connection_made before any request
        else:  # others in flight: their requests' commands of this turn go out in one write
            out.append(data)
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        out = self.out
        if out and not self.closed and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        out.clear()

    def send(self, data: bytes, count: int, deadline: float) -> list[asyncio.Future[object]]:
        """Write ``count`` commands (``data``, already encoded): a future per reply, in order."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            raise ConnectionError(f"connection to Redis {self.client.address} is closed")
        futures: list[asyncio.Future[object]] = []
        for _ in range(count):
            fut: asyncio.Future[object] = self.loop.create_future()
            self.pending.append((fut, deadline))
            futures.append(fut)
        if self.timer is None or self.timer_at > deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = deadline
            self.timer = self.loop.call_at(deadline, self._check_deadlines)
        if self.out:  # never ahead of the commands waiting for the end of the turn
            self.out.append(data)
        else:
            transport.write(data)
        return futures

    def _check_deadlines(self) -> None:
        self.timer = None
        if not self.pending:
            return
        earliest = min(deadline for _, deadline in self.pending)
        if earliest <= self.loop.time() + _EPSILON:
            self.fail(TimeoutError(f"Redis {self.client.address} did not answer in time"))
            return
        self.timer_at = earliest
        self.timer = self.loop.call_at(earliest, self._check_deadlines)

    def fail(self, exc: Exception) -> None:
        """Give up on this connection: every waiting call fails with ``exc``; the next call reconnects."""
        self._close(exc)
        if self.transport is not None:
            self.transport.abort()

    def _close(self, exc: Exception) -> None:
        if not self.closed:
            self.closed = True
            self.client.forget(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        pending = self.pending
        while pending:
            waiter, _ = pending.popleft()
            if isinstance(waiter, ReplyCallback):
                waiter.failed(exc)
            elif not waiter.done():
                waiter.set_exception(exc)
                waiter.exception()  # retrieved: a waiter whose caller has gone must not log at collection
        self.out.clear()

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport: create_connection

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        pending = self.pending
        pos = 0
        size = len(buf)
        while pos < size:
            try:
                reply, pos = parse_reply(buf, pos)
            except RespProtocolError as exc:
                self.fail(exc)
                return
            if reply is INCOMPLETE:
                break
            if not pending:  # a reply nobody asked for: the stream is not what we think it is
                self.fail(RespProtocolError(f"Redis {self.client.address} sent a reply nobody asked for"))
                return
            waiter, _ = pending.popleft()
            if isinstance(waiter, ReplyCallback):
                waiter.replied(reply)
            else:
                try:
                    waiter.set_result(reply)
                except asyncio.InvalidStateError:  # a cancelled caller's reply is read and dropped
                    continue
        self.buffer = buf[pos:] if pos < size else b""

    def eof_received(self) -> bool | None:
        self._close(ConnectionError(f"Redis {self.client.address} closed the connection"))
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._close(ConnectionError(f"connection to Redis {self.client.address} lost"))


def _to_bool(value: str) -> bool:
    return value.upper() not in _FALSE_STRINGS


def lean_url_supported(url: str) -> bool:
    """Whether ``LeanRedis.from_url`` reads ``url``: ``redis://`` or ``rediss://``, no other query parameters
    than ``db`` and, for ``rediss://``, ``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_ca_path``, ``ssl_certfile``,
    ``ssl_keyfile`` and ``ssl_check_hostname``."""
    scheme, separator, _ = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in ("redis", "rediss"):
        return False
    allowed = {"db"} | (_SSL_QUERY if scheme == "rediss" else set())
    try:
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return False
    return set(query) <= allowed


def _ssl_context(options: dict[str, str]) -> ssl.SSLContext:
    """The context redis-py (8.x) builds for ``rediss://`` with the same query parameters."""
    reqs_name = options.get("ssl_cert_reqs", "required")
    if reqs_name not in _CERT_REQS:
        raise ValueError("ssl_cert_reqs must be none, optional or required")
    cert_reqs = _CERT_REQS[reqs_name]
    check = options.get("ssl_check_hostname", "")
    check_hostname = (_to_bool(check) if check else True) if cert_reqs != ssl.CERT_NONE else False
    context = ssl.create_default_context()
    context.check_hostname = check_hostname
    context.verify_mode = cert_reqs
    certfile, keyfile = options.get("ssl_certfile"), options.get("ssl_keyfile")
    if certfile or keyfile:
        context.load_cert_chain(certfile=certfile or "", keyfile=keyfile)
    ca_certs, ca_path = options.get("ssl_ca_certs"), options.get("ssl_ca_path")
    if ca_certs or ca_path:
        context.load_verify_locations(cafile=ca_certs, capath=ca_path)
    return context


class LeanRedis:
    """One pipelined connection to one Redis server, opened on first use and again after each failure.

    ``run_script`` is what the limit stores call; ``execute`` sends any other command (tests, checks).
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 6379,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 0.25,
        timeout: float = 0.25,
    ) -> None:
        self.host, self.port = host, port
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.username, self.password, self.db = username, password, db
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._handshake = b""
        self._handshake_count = 0
        if password is not None:
            auth: tuple[str, ...] = ("AUTH", password) if username is None else ("AUTH", username, password)
            self._handshake += encode_command(auth)
            self._handshake_count += 1
        if db:
            self._handshake += encode_command(("SELECT", db))
            self._handshake_count += 1

    def __repr__(self) -> str:
        return f"LeanRedis({self.address}, db={self.db}, tls={self.ssl_context is not None})"

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 0.25) -> LeanRedis:
        """``redis://[[user]:password@]host[:port][/db]`` or ``rediss://...`` (``lean_url_supported``);
        ``timeout`` is both the connect timeout and the default per-call timeout."""
        if not lean_url_supported(url):
            raise ValueError("LeanRedis reads redis:// and rediss:// URLs with db and ssl_* query parameters only")
        parts = urlsplit(url)
        options = {name: values[0] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        db = 0
        if "db" in options:
            db = int(options["db"])
        elif parts.path:
            try:
                db = int(unquote(parts.path).replace("/", ""))
            except ValueError:
                db = 0  # redis-py ignores a path that is not a number
        context = _ssl_context(options) if parts.scheme.lower() == "rediss" else None
        return cls(
            unquote(parts.hostname) if parts.hostname else "localhost",
            parts.port or 6379,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            db=db,
            ssl_context=context,
            connect_timeout=timeout,
            timeout=timeout,
        )

    async def run_script(
        self, script: LuaScript, keys: Sequence[str], args: tuple[ScriptArg, ...], timeout: float
    ) -> object:
        """``EVALSHA``; after ``NOSCRIPT``, ``SCRIPT LOAD`` + ``EVALSHA`` once. The script's reply; raises
        ``RedisReplyError`` for an error reply, ``TimeoutError`` after ``timeout`` s, ``OSError`` otherwise."""
        return await self.run_command(script, script.evalsha_command(keys, args), timeout)

    async def run_command(self, script: LuaScript, command: bytes, timeout: float) -> object:
        """``run_script`` for its ``EVALSHA`` command already encoded (``LuaScript.head`` and ``bulk``)."""
        conn = self._conn
        if conn is None:
            deadline = asyncio.get_running_loop().time() + timeout
            conn = await self._connection(deadline)
        else:
            deadline = conn.loop.time() + timeout
        reply = await conn.request(command, deadline)
        if type(reply) is bytes or not isinstance(reply, RedisReplyError):
            return reply
        return await self.settle(script, command, reply, deadline)

    def ready(self) -> _Connection | None:
        """The open connection, if any: a caller on the hot path writes its command there itself
        (``_Connection.request``), awaits the reply and hands anything but bytes to ``settle``."""
        return self._conn

    async def settle(self, script: LuaScript, command: bytes, reply: object, deadline: float) -> object:
        """The end of a script call whose reply was not a bulk string: after ``NOSCRIPT``, ``SCRIPT LOAD`` +
        ``EVALSHA`` once, within the call's ``deadline``; an error reply is raised, any other returned."""
        if isinstance(reply, NoScriptError):
            conn = self._conn or await self._connection(deadline)
            loading, answering = conn.send(script.load_command + command, 2, deadline)
            loaded = await loading
            if isinstance(loaded, RedisReplyError):
                raise loaded
            reply = await answering
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def execute(self, *parts: Arg, timeout: float | None = None) -> object:
        """Any command, e.g. ``execute("SCRIPT", "FLUSH")``: its reply, or raises as ``run_script``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        conn = self._conn or await self._connection(deadline)
        reply = await conn.request(encode_command(parts), deadline)
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def aclose(self) -> None:
        """Close the connection (a later call would open a new one)."""
        connecting = self._connecting
        if connecting is not None:
            connecting.cancel()
        conn = self._conn
        if conn is not None:
            conn.fail(ConnectionError(f"connection to Redis {self.address} closed by the client"))

    def forget(self, conn: _Connection) -> None:
        if self._conn is conn:
            self._conn = None

    async def _connection(self, deadline: float) -> _Connection:
        connecting = self._connecting
        if connecting is None:
            connecting = self._connecting = asyncio.ensure_future(self._open())
            connecting.add_done_callback(self._opened)
        async with asyncio.timeout_at(deadline):
            return await asyncio.shield(connecting)

    def _opened(self, task: asyncio.Task[_Connection]) -> None:
        self._connecting = None
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter may have timed out already

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        async with asyncio.timeout_at(deadline):
            _, conn = await loop.create_connection(
                lambda: _Connection(self, loop),
                self.host,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.host if self.ssl_context is not None else None,
            )
            try:
                if self._handshake_count:
                    for fut in conn.send(self._handshake, self._handshake_count, deadline):
                        reply = await fut
                        if isinstance(reply, RedisReplyError):
                            raise reply
            except BaseException:
                conn.fail(ConnectionError(f"Redis {self.address}: the connection's set-up failed"))
                raise
        self._conn = conn
        return conn
