"""Usage metering per API key and per user: requests, cost points, rows and subscription-seconds per period.

The pipeline calls ``meter.record(...)`` once per request; that only adds to a dict in memory (no I/O), so
it is a plain call, not a coroutine.
``RedisUsageMeter`` flushes the buffer in a background task every ``flush_interval`` seconds, or as soon as
``flush_records`` records are waiting, in one Lua script per period (HINCRBY/HINCRBYFLOAT/SADD, run
atomically by Redis, one round trip), and once more on ``aclose()``. The script runs as the limiter's do
(``edge.limits.redis_store.ScriptClient``: EVALSHA, loaded again on NOSCRIPT) on the client given as
``scripts``: the limits' ``LeanRedis`` on one server, so the flush shares the limiter's connection, else a
redis-py client (Sentinel, Cluster). ``snapshot`` reads with the redis-py ``client``.

Redis layout (``period`` is the UTC calendar month ``2026-11``, or day ``2026-11-21``, between literal
braces)::

    <prefix>{<period>}:<kind>:<subject>   hash: requests, cost_points, rows, subscription_seconds
    <prefix>{<period>}:index:<kind>       set of the subjects of that kind with usage in the period

The braces are a Redis Cluster hash tag: every key of a period lives in one slot, so one script may touch
them all on a Cluster too (a script, like a MULTI, cannot span slots), and the report reads one node.
Releases before the tag wrote ``<prefix><period>:<kind>:<subject>``; ``snapshot`` adds what is stored
under those names, so a period that spans an upgrade is reported whole.

A record counts in the period of its ``record`` call, not of its flush, so a flush after midnight on the
first of the month still bills the old month. Nothing expires by default (billing data); pass
``retention_seconds`` to let old periods go.

Loss window: a crash (SIGKILL, OOM) loses at most what was buffered since the last flush, i.e. at most
``flush_interval`` seconds or ``flush_records`` records of this replica; a clean shutdown loses nothing. A
failed flush never raises: the periods not written are merged back and retried at the next flush
(``store_errors`` and the ``edge_store_errors_total{store="usage"}`` metric count failures). Each period's
script is atomic, so it is applied entirely or not at all; only a flush that fails after Redis applied it
but before its reply reached the edge can make a retry count that period's batch twice: its timeout, its
cancellation, or, on the lean client, the shared connection dropped because a limiter call on it timed
out (Redis busy for longer than the limiter's timeout). While Redis is down the buffer keeps one entry per
subject (``max_pending`` subjects at most; beyond, new subjects' usage is dropped and counted in
``dropped``).

Per-subject usage is served by the admin endpoint (``usage_report``), not as Prometheus labels: keys and
users are unbounded, and a label per key would be a series per key for ever. Prometheus gets only the sums
per subject kind (``edge_usage_total{measure,subject_kind}``) through ``EdgeMetrics.usage_recorded``.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
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
    __slots__ = ("max_pending", "dropped")

    def __init__(
        self, clock: Callable[[], float], period: Period, metrics: EdgeMetrics | None, max_pending: int
    ) -> None:
        super().__init__(clock, period, metrics)
        self.max_pending = max_pending
        self.dropped = 0

    def admit(self) -> bool:
        if len(self.totals) < self.max_pending:
            return True
        self.dropped += 1
        return False


_FLUSH: Final = LuaScript(
    """
-- KEYS: per subject its hash, then its kind's index; ARGV[1]: retention seconds or '';
-- then per subject: subject, requests, cost_points, rows, subscription_seconds
local retention = tonumber(ARGV[1])
for i = 1, #KEYS / 2 do
  local key, index, a = KEYS[2 * i - 1], KEYS[2 * i], 5 * i - 3
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
        max_pending: int = 100_000,
        retention_seconds: int | None = None,
        timeout: float = 2.0,
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
        self.retention_seconds = retention_seconds
        self.timeout = timeout
        self.metrics = metrics
        self.store_errors = 0
        self._buffer = _BoundedBuffer(clock, period, metrics, max_pending)
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
        """Subjects buffered and not yet written."""
        return len(self._buffer.totals)

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
        """Write the buffer; True when it is empty afterwards. Never raises (failures are counted)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            buffer = self._buffer
            batch, buffer.totals = buffer.totals, {}
            buffer.records = 0
            if not batch:
                return True
            first = next(iter(batch))[0]
            if all(key[0] == first for key in batch):  # one period, as but for a flush across midnight
                pending = [batch]
            else:
                by_period: dict[str, dict[tuple[str, str, str], list[float]]] = {}
                for key, values in batch.items():
                    by_period.setdefault(key[0], {})[key] = values
                pending = list(by_period.values())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            try:
                async with asyncio.timeout_at(deadline):
                    while pending:
                        await self._write(pending[0], deadline - loop.time())
                        pending.pop(0)  # written: a failure after this must not count it again
            except asyncio.CancelledError:
                for unwritten in pending:  # cancelled mid-write (loop shutdown): keep the usage for a later flush
                    self._merge_back(unwritten)
                raise
            except Exception as exc:  # metering never raises to the request path or the flusher
                for unwritten in pending:
                    self._merge_back(unwritten)
                self._failed(exc)
                return False
            return True

    def _keys(self, period: str) -> tuple[str, str]:
        """The start of a period's subject keys and of its index keys (hash-tagged: one Cluster slot)."""
        base = f"{self.prefix}{{{period}}}:"
        return base, base + "index:"

    async def _write(self, batch: dict[tuple[str, str, str], list[float]], timeout: float) -> None:
        """One period's usage in one script call (all its keys share the period's hash tag)."""
        # A script rather than MULTI/EXEC: as atomic, and redis-py's asyncio cluster client runs a transaction's
        # commands through a thread that blocks the event loop.
        scripts = self.scripts
        if isinstance(scripts, LeanRedis):
            await scripts.run_command(_FLUSH, self._command(batch), timeout)
            return
        keys: list[str] = []
        args: list[str | int] = ["" if self.retention_seconds is None else self.retention_seconds]
        for (period, kind, subject), (requests, cost_points, rows, seconds) in batch.items():
            subjects, indexes = self._keys(period)
            keys += (f"{subjects}{kind}:{subject}", f"{indexes}{kind}")
            args += (subject, int(requests), int(cost_points), int(rows), repr(float(seconds)))
        await scripts.run_script(_FLUSH, keys, tuple(args), timeout)

    def _command(self, batch: dict[tuple[str, str, str], list[float]]) -> bytes:
        """``_write``'s EVALSHA as RESP: the same keys and arguments, each subject's encoded in two formats, and
        its four figures once per distinct four in the flush (thousands of subjects' keys and arguments as
        strings, then encoded one by one, cost 14,000 instructions each)."""
        keys: list[bytes] = []
        args = [bulk(b"" if self.retention_seconds is None else b"%d" % self.retention_seconds)]
        starts: dict[str, tuple[str, bytes, bytes]] = {}  # per kind: the period, its subjects' key start, its index
        figures: dict[tuple[float, ...], bytes] = {}
        for (period, kind, subject), values in batch.items():
            start = starts.get(kind)
            if start is None or start[0] != period:
                subjects_at, indexes_at = self._keys(period)
                start = starts[kind] = (period, f"{subjects_at}{kind}:".encode(), bulk(f"{indexes_at}{kind}".encode()))
            _, key_start, index = start
            name = subject.encode()
            keys.append(b"$%d\r\n%s%s\r\n%s" % (len(key_start) + len(name), key_start, name, index))
            same = tuple(values)
            encoded = figures.get(same)
            if encoded is None:
                requests, cost_points, rows, seconds = values
                encoded = figures[same] = _figures(int(requests), int(cost_points), int(rows), seconds)
            args.append(b"$%d\r\n%s\r\n%s" % (len(name), name, encoded))
        return _FLUSH.head(2 * len(batch), 1 + 5 * len(batch)) + b"".join(keys) + b"".join(args)

    def _merge_back(self, batch: dict[tuple[str, str, str], list[float]]) -> None:
        totals = self._buffer.totals
        for key, values in batch.items():
            current = totals.get(key)
            if current is None:
                if len(totals) >= self._buffer.max_pending:
                    self._buffer.dropped += 1
                    continue
                totals[key] = values
            else:
                for i in range(4):
                    current[i] += values[i]

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
            async with asyncio.timeout(self.timeout):
                for kind in kinds:
                    pipe = self.client.pipeline(transaction=False)
                    pipe.smembers(f"{indexes_at}{kind}")
                    pipe.smembers(f"{legacy_at}index:{kind}")
                    current, legacy = await pipe.execute()
                    subjects = sorted({_text(member) for member in (*current, *legacy)})
                    pipe = self.client.pipeline(transaction=False)
                    for subject in subjects:
                        pipe.hgetall(f"{subjects_at}{kind}:{subject}")
                        pipe.hgetall(f"{legacy_at}{kind}:{subject}")
                    hashes = await pipe.execute() if subjects else []
                    for i, subject in enumerate(subjects):
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
    for row in rows:
        entry = asdict(row)
        del entry["period"]
        subjects.append(entry)
        sums = totals.setdefault(row.subject_kind, dict.fromkeys(_FIELDS, 0))
        for name in _FIELDS:
            sums[name] += entry[name]
    return {"period": wanted, "subjects": subjects, "totals": totals}
