"""Usage metering per API key and per user: requests, cost points, rows and subscription-seconds per period.

The pipeline calls ``meter.record(...)`` once per request; that only adds to a dict in memory (no I/O), so
it is a plain call, not a coroutine.
``RedisUsageMeter`` flushes the buffer in a background task every ``flush_interval`` seconds, or as soon as
``flush_records`` records are waiting, in one Lua script per period and ``batch_subjects`` subjects
(HINCRBY/HINCRBYFLOAT/SADD, each script run atomically by Redis, one round trip), and once more on
``aclose()``. The scripts run as the limiter's do (``edge.limits.redis_store.ScriptClient``: EVALSHA, loaded
again on NOSCRIPT) on the client given as ``scripts``: the limits' ``LeanRedis`` on one server, so the flush
shares the limiter's connection, else a redis-py client (Sentinel, Cluster). ``snapshot`` reads with the
redis-py ``client``.

Redis layout (``period`` is the UTC calendar month ``2026-11``, or day ``2026-11-21``, between literal
braces)::

    <prefix>{<period>}:<kind>:<subject>   hash: requests, cost_points, rows, subscription_seconds
    <prefix>{<period>}:index:<kind>       set of the subjects of that kind with usage in the period
    <prefix>{<period>}:flush:<meter id>   the sequence number of that meter's last batch applied in the period

The braces are a Redis Cluster hash tag: every key of a period lives in one slot, so one script may touch
them all on a Cluster too (a script, like a MULTI, cannot span slots), and the report reads one node.
Releases before the tag wrote ``<prefix><period>:<kind>:<subject>``; ``snapshot`` adds what is stored
under those names, so a period that spans an upgrade is reported whole.

A record counts in the period of its ``record`` call, not of its flush, so a flush after midnight on the
first of the month still bills the old month. Nothing expires by default (billing data); pass
``retention_seconds`` to let old periods go.

Loss window: a crash (SIGKILL, OOM) loses what was not written yet: while Redis answers, at most
``flush_interval`` seconds or ``flush_records`` records of this replica; while it does not, everything kept
since. A clean shutdown writes everything kept, if Redis answers then. A failed flush never raises
(``store_errors`` and the ``edge_store_errors_total{store="usage"}`` metric count failures).

Exactly once: each flush empties the buffer into batches, one per period and ``batch_subjects`` subjects
(``BATCH_SUBJECTS``, 1,000, unless given), numbered from 1 in the order formed by this meter (whose id, 128
random bits, is drawn when it is made). A batch whose write fails (a timeout, a cancellation at loop
shutdown, a lost connection) is kept as it was sent and sent again, unchanged and first, by the next flush
and by ``aclose()``; no other batch is formed until it is written (the records meanwhile add up in the
buffer as usual), so a meter's batches reach Redis in their order. The script compares the batch's number
with the meter's flush mark in the period: at or below it, the batch was applied already (the failure came
after Redis applied it, e.g. a script still running when ``timeout`` ran out: closing the connection does
not stop a script) and nothing is written. Otherwise it checks every key's type before its first write (a
script that fails keeps what it wrote before), then sets the mark to the batch's number (for
``FLUSH_MARK_SECONDS``, 7 days) and applies the batch, in one atomic script. A mark per meter and period
rather than a key per batch: Redis keeps one key per edge process and period, however often it flushes. So
each batch counts once, whatever fails when, but for two cases: a batch sent again more than 7 days after
Redis applied it (the edge unable to reach Redis all that time) counts twice; a write failing half-way
through the script (a field holding a non-number, written there by something other than the meter, or a
count past 2**63) keeps the subjects written before it and loses the rest (the error counted in
``store_errors``). A Sentinel failover loses what the old master had not yet replicated, marks and usage
alike, so a flush acknowledged then is lost, not counted twice.

Batches are bounded because a script holds Redis for every client while it runs: 1,000 subjects take 6 to
10 ms there, and the 100,000 subjects an edge may keep through an outage took 806 to 941 ms in one script
(``bench/usage_flush.py``, two runs on the workplace box), more than the limiters' 0.25 s timeout, so every
replica's limit decisions would have failed at once when Redis came back. A flush of more subjects is
several scripts, sent one after the other (the longest of that flush's 100 took 13 to 16 ms), and between
two of them Redis serves the limiters' calls.

Memory stays bounded while Redis is down: the buffer keeps one entry per subject, and so do the batches kept
for their retry; together at most ``max_pending`` subjects (``pending`` counts both; a
subject recorded again after its batch failed counts in each); beyond, new subjects' usage is dropped and
counted in ``dropped``.

Per-subject usage is served by the admin endpoint (``usage_report``), not as Prometheus labels: keys and
users are unbounded, and a label per key would be a series per key for ever. Prometheus gets only the sums
per subject kind (``edge_usage_total{measure,subject_kind}``) through ``EdgeMetrics.usage_recorded``.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from edge.limits.redis_store import RedisPyScripts, ScriptClient
from edge.limits.resp_client import LeanRedis, LuaScript, bulk

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from edge.limits.redis_store import StoreClient
    from edge.observability.metrics import EdgeMetrics

__all__ = [
    "MemoryUsageMeter",
    "Period",
    "RedisUsageMeter",
    "SubjectKind",
    "UsageMeter",
    "UsageRow",
    "UsageUnavailable",
    "period_of",
    "usage_report",
]

logger = logging.getLogger(__name__)

SubjectKind = Literal["key", "user"]
Period = Literal["month", "day"]
_KINDS: Final[tuple[SubjectKind, ...]] = ("key", "user")
_FIELDS: Final[tuple[str, ...]] = ("requests", "cost_points", "rows", "subscription_seconds")
_MAX_SUBJECT: Final = 256


@dataclass(frozen=True, slots=True)
class UsageRow:
    subject_kind: SubjectKind
    subject: str
    period: str
    requests: int = 0
    cost_points: int = 0
    rows: int = 0
    subscription_seconds: float = 0.0


class UsageMeter(Protocol):
    def record(
        self,
        subject_kind: SubjectKind,
        subject: str,
        *,
        requests: int = 0,
        cost_points: int = 0,
        rows: int = 0,
        subscription_seconds: float = 0,
    ) -> None: ...

    async def snapshot(self, subject_kind: SubjectKind | None = None, *, period: str | None = None) -> list[UsageRow]:
        """Usage of ``period`` (default: the current one), sorted by kind then subject."""
        ...

    def current_period(self) -> str: ...


def period_of(now: float, period: Period) -> tuple[str, float, float]:
    """The period containing epoch second ``now``: its name, start and end (UTC).

    >>> period_of(1795000000.0, "month")[0]
    '2026-11'
    """
    t = time.gmtime(now)
    if period == "month":
        start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return f"{t.tm_year:04d}-{t.tm_mon:02d}", start, calendar.timegm((year, month, 1, 0, 0, 0))
    if period == "day":
        start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
        return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", start, start + 86_400
    raise ValueError(f"period must be 'month' or 'day', not {period!r}")


class _Buffer:
    """Usage totals per (period, kind, subject), with the period computed once per period, not per record."""

    __slots__ = ("clock", "period", "metrics", "totals", "records", "_name", "_start", "_end")

    def __init__(self, clock: Callable[[], float], period: Period, metrics: EdgeMetrics | None) -> None:
        period_of(clock(), period)  # validates ``period``
        self.clock = clock
        self.period = period
        self.metrics = metrics
        self.totals: dict[tuple[str, str, str], list[float]] = {}
        self.records = 0
        self._name = ""
        self._start = self._end = 0.0

    def current_period(self) -> str:
        now = self.clock()
        if not self._start <= now < self._end:
            self._enter(now)
        return self._name

    def _enter(self, now: float) -> None:
        name, start, end = period_of(now, self.period)
        # As floats: ``add`` compares them with ``clock()`` for every record, and float < int is ~3x slower.
        self._name, self._start, self._end = name, float(start), float(end)

    def add(
        self, kind: str, subject: str, requests: int, cost_points: int, rows: int, subscription_seconds: float
    ) -> bool:
        if kind not in _KINDS:
            raise ValueError(f"subject_kind must be 'key' or 'user', not {kind!r}")
        now = self.clock()  # ``current_period()``, inlined: this runs for every record
        if not self._start <= now < self._end:
            self._enter(now)
        key = (self._name, kind, subject[:_MAX_SUBJECT])
        totals = self.totals.get(key)
        if totals is None:
            if not self.admit():
                return False
            totals = self.totals[key] = [0, 0, 0, 0.0]
        totals[0] += requests
        totals[1] += cost_points
        totals[2] += rows
        totals[3] += subscription_seconds
        self.records += 1
        metrics = self.metrics
        if metrics is not None:
            metrics.usage_recorded(kind, requests, cost_points, rows, subscription_seconds)
        return True

    def admit(self) -> bool:
        return True


def _row(kind: str, subject: str, period: str, totals: list[float]) -> UsageRow:
    return UsageRow(
        kind,  # type: ignore[arg-type]  # checked by _Buffer.add
        subject,
        period,
        int(totals[0]),
        int(totals[1]),
        int(totals[2]),
        float(totals[3]),
    )


class MemoryUsageMeter:
    """Usage in this process only (tests, a single replica without Redis); lost on restart."""

    def __init__(
        self, *, period: Period = "month", clock: Callable[[], float] = time.time, metrics: EdgeMetrics | None = None
    ) -> None:
        self._buffer = _Buffer(clock, period, metrics)

    def current_period(self) -> str:
        return self._buffer.current_period()

    def record(
        self,
        subject_kind: SubjectKind,
        subject: str,
        *,
        requests: int = 0,
        cost_points: int = 0,
        rows: int = 0,
        subscription_seconds: float = 0,
    ) -> None:
        self._buffer.add(subject_kind, subject, requests, cost_points, rows, subscription_seconds)

    async def snapshot(self, subject_kind: SubjectKind | None = None, *, period: str | None = None) -> list[UsageRow]:
        wanted = period or self._buffer.current_period()
        return sorted(
            (
                _row(kind, subject, p, totals)
                for (p, kind, subject), totals in self._buffer.totals.items()
                if p == wanted and (subject_kind is None or kind == subject_kind)
            ),
            key=lambda row: (row.subject_kind, row.subject),
        )

    async def reset(self) -> None:
        self._buffer.totals.clear()


class _BoundedBuffer(_Buffer):
    """At most ``max_pending`` subjects between the buffer and the batches not yet written (``room``: what the
    batches leave to the buffer, so that admitting a subject costs what it cost without them)."""

    __slots__ = ("max_pending", "room", "dropped")

    def __init__(
        self, clock: Callable[[], float], period: Period, metrics: EdgeMetrics | None, max_pending: int
    ) -> None:
        super().__init__(clock, period, metrics)
        self.max_pending = max_pending
        self.room = max_pending
        self.dropped = 0

    def admit(self) -> bool:
        if len(self.totals) < self.room:
            return True
        self.dropped += 1
        return False


_FLUSH: Final = LuaScript(
    """
-- KEYS[1]: the meter's flush mark in the period (the sequence number of its last batch applied there); then
-- per subject its hash, then its kind's index. ARGV[1]: retention seconds or ''; ARGV[2]: the batch's sequence
-- number; ARGV[3]: the mark's lifetime in seconds; then per subject: subject, requests, cost_points, rows,
-- subscription_seconds.
local mark, subjects = KEYS[1], (#KEYS - 1) / 2
if tonumber(ARGV[2]) <= tonumber(redis.call('GET', mark) or '0') then
  return 0  -- applied already: this is the retry of a write whose reply was lost
end
-- A script that fails keeps what it wrote before: every key's type is checked before the first write.
local indexes = {}
for i = 1, subjects do
  local key, index = KEYS[2 * i], KEYS[2 * i + 1]
  local found = redis.call('TYPE', key).ok
  if found ~= 'hash' and found ~= 'none' then
    return redis.error_reply('WRONGTYPE usage key ' .. key .. ' holds a ' .. found)
  end
  if not indexes[index] then
    found = redis.call('TYPE', index).ok
    if found ~= 'set' and found ~= 'none' then
      return redis.error_reply('WRONGTYPE usage index ' .. index .. ' holds a ' .. found)
    end
    indexes[index] = true
  end
end
redis.call('SET', mark, ARGV[2], 'EX', ARGV[3])
local retention = tonumber(ARGV[1])
for i = 1, subjects do
  local key, index, a = KEYS[2 * i], KEYS[2 * i + 1], 5 * i - 1
  if ARGV[a + 1] ~= '0' then redis.call('HINCRBY', key, 'requests', ARGV[a + 1]) end
  if ARGV[a + 2] ~= '0' then redis.call('HINCRBY', key, 'cost_points', ARGV[a + 2]) end
  if ARGV[a + 3] ~= '0' then redis.call('HINCRBY', key, 'rows', ARGV[a + 3]) end
  if tonumber(ARGV[a + 4]) ~= 0 then redis.call('HINCRBYFLOAT', key, 'subscription_seconds', ARGV[a + 4]) end
  redis.call('SADD', index, ARGV[a])
  if retention then
    redis.call('EXPIRE', key, retention)
    redis.call('EXPIRE', index, retention)
  end
end
return 1
""",
    cache=False,  # every flush's keys, arguments and their count are new: nothing to keep
)

FLUSH_MARK_SECONDS: Final = 7 * 86_400
"""How long a flush mark outlives the meter's last batch applied in its period: a batch re-sent later than that
after Redis applied it (Redis unreachable for a week, the edge running all along) would count twice."""

BATCH_SUBJECTS: Final = 1000
"""The most subjects a flush writes in one script (``RedisUsageMeter(batch_subjects=...)``): as many as a flush at
``flush_records`` holds, about 10 ms of Redis' time; a backlog is written as several scripts of this size."""

REPORT_TIMEOUT: Final = 30.0
"""How long ``snapshot`` (``/admin/usage``) may read a period: 100,000 subjects took 6 s on the workplace box."""

READ_BATCH: Final = 100
"""Subjects the report reads per round trip (``SSCAN``'s count, ``HGETALL``s per pipeline) and turns into rows
between two yields to the event loop. ``/admin/usage`` runs on a serving edge, whose requests wait while
redis-py parses a pipeline's replies (about 0.1 ms per subject, two hashes each, in pure Python): 100 subjects
keep each wait under about 15 ms (``bench/usage_flush.py`` prints the longest). No one command reads a whole
index while Redis' other clients wait, either."""

_Totals = dict[tuple[str, str, str], list[float]]


class _Batch:
    """Usage of one period (at most ``batch_subjects`` subjects) as sent to Redis under its sequence number,
    re-sent unchanged until Redis answers."""

    __slots__ = ("period", "sequence", "totals")

    def __init__(self, period: str, sequence: int, totals: _Totals) -> None:
        self.period = period
        self.sequence = sequence
        self.totals = totals


def _batches(totals: _Totals, size: int) -> list[tuple[str, _Totals]]:
    """``totals`` split by period, and each period's into parts of at most ``size`` subjects, in their order."""
    first = next(iter(totals))[0]
    if len(totals) <= size and all(key[0] == first for key in totals):  # the usual flush: one script
        return [(first, totals)]
    periods: dict[str, _Totals] = {}
    for key, values in totals.items():
        periods.setdefault(key[0], {})[key] = values
    batches: list[tuple[str, _Totals]] = []
    for period, subjects in periods.items():
        items = list(subjects.items())
        batches += [(period, dict(items[start : start + size])) for start in range(0, len(items), size)]
    return batches


def _figures(requests: int, cost_points: int, rows: int, seconds: float) -> bytes:
    """A subject's last four flush arguments as RESP, as ``_write`` sends them: three integers, ``repr`` of a float."""
    used, points, returned = b"%d" % requests, b"%d" % cost_points, b"%d" % rows
    held = b"0.0" if seconds == 0.0 else repr(float(seconds)).encode()  # repr(0.0), unformatted: most have none
    return b"$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(used),
        used,
        len(points),
        points,
        len(returned),
        returned,
        len(held),
        held,
    )


class RedisUsageMeter:
    """Usage shared by every replica in Redis, buffered in memory and flushed in the background.

    ``start()`` launches the flusher (needs a running loop); ``aclose()`` stops it and flushes once more.
    Without ``start()``, nothing is written until ``flush()``, ``snapshot()`` or ``aclose()``.
    ``scripts``: what the flush runs its script on, a ``LeanRedis`` or a redis-py client (default ``client``).
    ``timeout`` bounds each flush; ``report_timeout`` the report's read of a period (``snapshot``), which an
    admin waits for and which takes seconds for a period of 100,000 subjects.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "edge:usage:",
        period: Period = "month",
        *,
        scripts: StoreClient | None = None,
        flush_interval: float = 5.0,
        flush_records: int = 1000,
        batch_subjects: int = BATCH_SUBJECTS,
        max_pending: int = 100_000,
        retention_seconds: int | None = None,
        timeout: float = 2.0,
        report_timeout: float = REPORT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        metrics: EdgeMetrics | None = None,
        log_interval: float = 10.0,
    ) -> None:
        self.client = client
        flusher = client if scripts is None else scripts
        # As the limit stores adapt theirs: a LeanRedis runs scripts itself, a redis-py client through RedisPyScripts.
        self.scripts: ScriptClient = flusher if isinstance(flusher, LeanRedis) else RedisPyScripts(flusher)
        self.prefix = prefix
        self.flush_interval = flush_interval
        self.flush_records = flush_records
        if batch_subjects < 1:
            raise ValueError("batch_subjects must be at least 1")
        self.batch_subjects = batch_subjects
        self.retention_seconds = retention_seconds
        self.timeout = timeout
        self.report_timeout = report_timeout
        self.metrics = metrics
        self.store_errors = 0
        self._buffer = _BoundedBuffer(clock, period, metrics, max_pending)
        # Names this meter's flush marks: unique per process, so that sequence numbers never meet another's.
        self._flush_id = secrets.token_hex(16)
        self._sequence = 0
        self._unsent: list[_Batch] = []  # formed from the buffer, in order; their writes failed or are to come
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._lock: asyncio.Lock | None = None
        self._log_interval = log_interval
        self._next_log = 0.0

    @property
    def dropped(self) -> int:
        """Records refused because ``max_pending`` subjects were already waiting (Redis down for long)."""
        return self._buffer.dropped

    @property
    def pending(self) -> int:
        """Subjects not yet written: in the buffer, and in the batches whose write failed (a subject recorded
        again after its batch failed is in both)."""
        buffer = self._buffer
        return len(buffer.totals) + buffer.max_pending - buffer.room

    def current_period(self) -> str:
        return self._buffer.current_period()

    def record(
        self,
        subject_kind: SubjectKind,
        subject: str,
        *,
        requests: int = 0,
        cost_points: int = 0,
        rows: int = 0,
        subscription_seconds: float = 0,
    ) -> None:
        buffer = self._buffer
        buffer.add(subject_kind, subject, requests, cost_points, rows, subscription_seconds)
        if buffer.records >= self.flush_records and self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        """Launch the background flusher (idempotent)."""
        if self._task is None:
            self._closing = False
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="usage-meter-flush")

    async def aclose(self) -> None:
        """Stop the flusher (letting a flush in progress finish) and flush what is left."""
        task, self._task = self._task, None
        if task is not None and self._wake is not None:
            self._closing = True
            self._wake.set()
            await task
        await self.flush()

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await wake.wait()
            wake.clear()
            if not self._closing:
                await self.flush()

    async def flush(self) -> bool:
        """Write the batches whose write failed, as they were sent, then the buffer; True when all is written.
        Never raises (failures are counted), but for a cancellation, which keeps the batches for the next flush."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # Counted from this attempt, formed or not: while a batch's retry fails, every record would wake the
            # flusher again.
            self._buffer.records = 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            try:
                async with asyncio.timeout_at(deadline):
                    if self._unsent:  # Redis may have applied them: the buffer waits until it has said so
                        await self._send_unsent(deadline)
                    self._form_batches()
                    await self._send_unsent(deadline)
            except Exception as exc:  # metering never raises to the request path or the flusher
                self._failed(exc)
                return False
            return True

    def _form_batches(self) -> None:
        """The buffer, emptied into batches (one per period and ``batch_subjects`` subjects), each with a sequence
        number of its own."""
        buffer = self._buffer
        totals, buffer.totals = buffer.totals, {}
        buffer.records = 0
        if not totals:
            return
        for period, batch in _batches(totals, self.batch_subjects):
            self._sequence += 1
            self._unsent.append(_Batch(period, self._sequence, batch))
        buffer.room -= len(totals)

    async def _send_unsent(self, deadline: float) -> None:
        unsent, loop = self._unsent, asyncio.get_running_loop()
        while unsent:
            batch = unsent[0]
            await self._write(batch, deadline - loop.time())
            del unsent[0]  # written: a failure after this must not send it again
            self._buffer.room += len(batch.totals)

    def _keys(self, period: str) -> tuple[str, str]:
        """The start of a period's subject keys and of its index keys (hash-tagged: one Cluster slot)."""
        base = f"{self.prefix}{{{period}}}:"
        return base, base + "index:"

    def _mark(self, period: str) -> str:
        """This meter's flush mark in ``period``: the sequence number of its last batch applied there."""
        return f"{self.prefix}{{{period}}}:flush:{self._flush_id}"

    async def _write(self, batch: _Batch, timeout: float) -> None:
        """One period's usage in one script call (all its keys share the period's hash tag)."""
        # A script rather than MULTI/EXEC: as atomic, and redis-py's asyncio cluster client runs a transaction's
        # commands through a thread that blocks the event loop.
        scripts = self.scripts
        if isinstance(scripts, LeanRedis):
            await scripts.run_command(_FLUSH, self._command(batch), timeout)
            return
        keys = [self._mark(batch.period)]
        args: list[str | int] = [
            "" if self.retention_seconds is None else self.retention_seconds,
            batch.sequence,
            FLUSH_MARK_SECONDS,
        ]
        subjects, indexes = self._keys(batch.period)
        for (_, kind, subject), (requests, cost_points, rows, seconds) in batch.totals.items():
            keys += (f"{subjects}{kind}:{subject}", f"{indexes}{kind}")
            args += (subject, int(requests), int(cost_points), int(rows), repr(float(seconds)))
        await scripts.run_script(_FLUSH, keys, tuple(args), timeout)

    def _command(self, batch: _Batch) -> bytes:
        """``_write``'s EVALSHA as RESP: the same keys and arguments, each subject's encoded in two formats, and
        its four figures once per distinct four in the flush (thousands of subjects' keys and arguments as
        strings, then encoded one by one, cost 14,000 instructions each)."""
        totals = batch.totals
        keys = [bulk(self._mark(batch.period).encode())]
        args = [
            bulk(b"" if self.retention_seconds is None else b"%d" % self.retention_seconds),
            bulk(b"%d" % batch.sequence),
            bulk(b"%d" % FLUSH_MARK_SECONDS),
        ]
        subjects_at, indexes_at = self._keys(batch.period)
        starts: dict[str, tuple[bytes, bytes]] = {  # per kind: its subjects' key start, its index
            kind: (f"{subjects_at}{kind}:".encode(), bulk(f"{indexes_at}{kind}".encode())) for kind in _KINDS
        }
        figures: dict[tuple[float, ...], bytes] = {}
        for (_, kind, subject), values in totals.items():
            key_start, index = starts[kind]
            name = subject.encode()
            keys.append(b"$%d\r\n%s%s\r\n%s" % (len(key_start) + len(name), key_start, name, index))
            same = tuple(values)
            encoded = figures.get(same)
            if encoded is None:
                requests, cost_points, rows, seconds = values
                encoded = figures[same] = _figures(int(requests), int(cost_points), int(rows), seconds)
            args.append(b"$%d\r\n%s\r\n%s" % (len(name), name, encoded))
        return _FLUSH.head(1 + 2 * len(totals), 3 + 5 * len(totals)) + b"".join(keys) + b"".join(args)

    def _failed(self, exc: Exception) -> None:
        self.store_errors += 1
        if self.metrics is not None:
            self.metrics.store_error("usage")
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + self._log_interval
            logger.warning(
                "usage_store_error",
                extra={"error": type(exc).__name__, "store_errors": self.store_errors, "pending": self.pending},
            )

    async def snapshot(self, subject_kind: SubjectKind | None = None, *, period: str | None = None) -> list[UsageRow]:
        """Usage of all replicas (after flushing this one's buffer); raises ``UsageUnavailable`` when Redis
        cannot be read (the only method that raises: an admin asked, and an empty report would mislead)."""
        await self.flush()
        wanted = period or self.current_period()
        kinds = _KINDS if subject_kind is None else (subject_kind,)
        rows: list[UsageRow] = []
        subjects_at, indexes_at = self._keys(wanted)
        legacy_at = f"{self.prefix}{wanted}:"  # the layout before the hash tag (see the module docstring)
        try:
            async with asyncio.timeout(self.report_timeout):
                for kind in kinds:
                    # SSCAN and pipelines of READ_BATCH: no one command holds Redis for a whole index.
                    found: set[str] = set()  # SSCAN may return a member twice
                    for index in (f"{indexes_at}{kind}", f"{legacy_at}index:{kind}"):
                        async for member in self.client.sscan_iter(index, count=READ_BATCH):
                            found.add(_text(member))
                    subjects = sorted(found)  # 100,000 subjects: about 40 ms of the loop, once per report
                    for start in range(0, len(subjects), READ_BATCH):
                        part = subjects[start : start + READ_BATCH]
                        pipe = self.client.pipeline(transaction=False)
                        for subject in part:
                            pipe.hgetall(f"{subjects_at}{kind}:{subject}")
                            pipe.hgetall(f"{legacy_at}{kind}:{subject}")
                        hashes = await pipe.execute()
                        for i, subject in enumerate(part):
                            totals = [0.0] * len(_FIELDS)
                            for values in hashes[2 * i : 2 * i + 2]:
                                fields = {_text(name): _text(value) for name, value in values.items()}
                                for j, name in enumerate(_FIELDS):
                                    totals[j] += float(fields.get(name, 0))
                            rows.append(_row(kind, subject, wanted, totals))
        except Exception as exc:
            self._failed(exc)
            raise UsageUnavailable("usage store unavailable", cause=exc) from exc
        return rows


class UsageUnavailable(Exception):
    """The usage store could not be read (the admin endpoint answers 503); ``cause`` is the store's error.

    ``cause`` is an attribute of its own because compiled code (mypyc) does not keep ``__cause__`` when an
    ``async def`` raises ``from`` an exception."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


async def usage_report(
    meter: UsageMeter, *, kind: SubjectKind | None = None, period: str | None = None
) -> dict[str, Any]:
    """The admin endpoint's JSON: per-subject usage of a period plus totals per kind.

    ``{"period": "2026-11", "subjects": [{"subject_kind": "key", "subject": "k1", "requests": 3, ...}],
    "totals": {"key": {"requests": 3, "cost_points": 40, "rows": 7, "subscription_seconds": 0.0}}}``
    """
    wanted = period or meter.current_period()
    rows = await meter.snapshot(kind, period=wanted)
    totals: dict[str, dict[str, float]] = {}
    subjects = []
    for count, row in enumerate(rows, 1):
        entry: dict[str, Any] = {
            "subject_kind": row.subject_kind,
            "subject": row.subject,
            "requests": row.requests,
            "cost_points": row.cost_points,
            "rows": row.rows,
            "subscription_seconds": row.subscription_seconds,
        }
        subjects.append(entry)
        sums = totals.setdefault(row.subject_kind, dict.fromkeys(_FIELDS, 0))
        for name in _FIELDS:
            sums[name] += entry[name]
        if count % READ_BATCH == 0:
            await asyncio.sleep(0)  # the serving edge's requests run between parts of a large report
    return {"period": wanted, "subjects": subjects, "totals": totals}
