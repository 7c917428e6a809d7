"""``python -m edge usage report``: the usage of a period per API key and per user, as a table or CSV.

::

    usage report [--period YYYY-MM|YYYY-MM-DD] [--kind key|user|all] [--csv FILE|-] [--no-owners] [--timeout S]

It reads what the admin endpoint ``GET /admin/usage`` reads, through the same meter
(``RedisUsageMeter.snapshot``), from ``EDGE_REDIS_URL`` as the edge reads it (``EDGE_*`` variables and the
``EDGE_CONFIG`` file). The default period is the current one of ``EDGE_USAGE_PERIOD``. A month's report adds
the month's own usage and that of each of its days, so it is whole whichever ``EDGE_USAGE_PERIOD`` the edges
recorded it with; a day's report has usage only where edges recorded by day.

Rows are sorted by cost points (highest first), then by subject; each table ends with a total. API keys are
shown by key id, with their owner and plan when ``EDGE_DATABASE_URL`` is set (``--no-owners`` skips the
database); a key's secret is never stored, so it can never be shown. ``--csv FILE`` writes the rows as CSV
(no total row) as well as printing the table; ``--csv -`` prints the CSV instead of the table.

On a terminal, standard error shows a progress line (the period being read and the subjects so far) when
the report takes more than a second; nothing is written there otherwise, except problems.

Exit codes: 0 done (an empty period too); 2 usage error, an invalid configuration (one line per problem,
naming the setting) or a CSV file that cannot be written; 3 the usage store (Redis) could not be read;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import contextlib
import csv
import datetime
import decimal
import io
import logging
import math
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO, cast

from edge.cli_parser import CommandParser, parse_command
from edge.observability.metering import RedisUsageMeter, SubjectKind, UsageUnavailable, period_of

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from edge.settings import EdgeSettings

__all__ = [
    "DEFAULT_TIMEOUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "KeyInfo",
    "Progress",
    "ReportRow",
    "UsageReport",
    "csv_text",
    "main",
    "parse_period",
    "read_report",
    "table_text",
]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C (128 + SIGINT)

DEFAULT_TIMEOUT = 10.0
PROGRAM = "hasura-edge"
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_KINDS: dict[str, tuple[SubjectKind, ...]] = {"key": ("key",), "user": ("user",), "all": ("key", "user")}
_MEASURES = ("requests", "cost_points", "rows", "subscription_seconds")
_TICK_SECONDS = 0.5
_TENTH = decimal.Decimal("0.1")


# --- periods ------------------------------------------------------------------------------------


def parse_period(text: str) -> tuple[str, ...]:
    """The stored periods a report of ``text`` reads: a day alone, or a month and each of its days.

    >>> parse_period("2026-02")[:3], len(parse_period("2026-02"))
    (('2026-02', '2026-02-01', '2026-02-02'), 29)

    ValueError (one line, for the operator) when ``text`` is neither a month ``YYYY-MM`` nor a day ``YYYY-MM-DD``.
    """
    problem = f"--period {text!r} is not a period: give a month (YYYY-MM) or a day (YYYY-MM-DD), e.g. 2026-12"
    day = _DAY.fullmatch(text)
    if day is not None:
        try:
            datetime.date(int(day[1]), int(day[2]), int(day[3]))
        except ValueError:
            raise ValueError(problem) from None
        return (text,)
    month = _MONTH.fullmatch(text)
    if month is None or not 1 <= int(month[2]) <= 12 or int(month[1]) < 1:
        raise ValueError(problem)
    days = calendar.monthrange(int(month[1]), int(month[2]))[1]
    return (text, *(f"{text}-{number:02d}" for number in range(1, days + 1)))


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the key store says about a key id: never its secret or hash."""

    owner: str
    plan: str


@dataclass(frozen=True, slots=True)
class ReportRow:
    subject_kind: SubjectKind
    subject: str
    requests: int = 0
    cost_points: int = 0
    rows: int = 0
    subscription_seconds: float = 0.0

    def measures(self) -> tuple[int, int, int, float]:
        return self.requests, self.cost_points, self.rows, self.subscription_seconds


@dataclass
class UsageReport:
    """One period's usage: rows per kind, sorted by cost points (highest first), then subject."""

    period: str
    kinds: tuple[SubjectKind, ...]
    rows: list[ReportRow]
    keys: dict[str, KeyInfo] = field(default_factory=dict)

    def of_kind(self, kind: SubjectKind) -> list[ReportRow]:
        return [row for row in self.rows if row.subject_kind == kind]


class Progress:
    """A status line on standard error, rewritten in place, only when that is a terminal and only once the
    work has taken ``delay`` seconds; ``close()`` erases it. Nothing at all is written to anything else."""

    def __init__(self, stream: TextIO, *, delay: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._enabled = _isatty(stream)
        self._delay = delay
        self._clock = clock
        self._start = clock()
        self._text = ""
        self._shown = False

    def update(self, text: str) -> None:
        self._text = text
        self.draw()

    def draw(self) -> None:
        elapsed = self._clock() - self._start
        if not self._enabled or not self._text or elapsed < self._delay:
            return
        self._stream.write(f"\r{self._text} ({elapsed:.0f} s)\x1b[K")
        self._stream.flush()
        self._shown = True

    async def tick(self) -> None:
        """Redraw every half second (the elapsed time moves while one long read runs); cancel to stop."""
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            self.draw()

    def close(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


async def read_report(
    meter: RedisUsageMeter, periods: Sequence[str], kinds: tuple[SubjectKind, ...], progress: Progress
) -> UsageReport:
    """The usage of ``periods`` (see ``parse_period``) added per subject; raises ``UsageUnavailable``."""
    totals: dict[tuple[SubjectKind, str], list[float]] = {}
    for number, period in enumerate(periods, start=1):
        progress.update(f"usage report: reading {period} ({number}/{len(periods)}), {len(totals):,} subjects so far")
        for row in await meter.snapshot(kinds[0] if len(kinds) == 1 else None, period=period):
            sums = totals.setdefault((row.subject_kind, row.subject), [0, 0, 0, 0.0])
            for i, value in enumerate((row.requests, row.cost_points, row.rows, row.subscription_seconds)):
                sums[i] += value
    rows = [
        ReportRow(kind, subject, int(sums[0]), int(sums[1]), int(sums[2]), float(sums[3]))
        for (kind, subject), sums in totals.items()
    ]
    rows.sort(key=lambda row: (kinds.index(row.subject_kind), -row.cost_points, row.subject))
    return UsageReport(periods[0], kinds, rows)


async def _key_infos(database_url: str, timeout: float) -> dict[str, KeyInfo]:
    from edge.keys.repository import open_repository  # psycopg only when owners are wanted

    async with open_repository(
        database_url, known_plans=(), wait=True, min_size=1, max_size=1, timeout=timeout
    ) as repository:
        return {key.key_id: KeyInfo(key.owner, key.plan) for key in await repository.list(include_revoked=True)}


# --- output -------------------------------------------------------------------------------------


def _printable(text: str) -> str:
    """Subjects come from clients (user ids): control characters are shown escaped, never sent to a terminal."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


@dataclass(frozen=True, slots=True)
class _Table:
    title: str
    header: tuple[str, ...]
    """The subject's columns (left-aligned); the measures' follow (right-aligned)."""
    lines: list[tuple[str, ...]]


def table_text(report: UsageReport) -> str:
    """The report for people: per kind a table with a total row; numeric columns as wide in every table."""
    lines = [f"Usage in {report.period} (UTC)"]
    if not report.rows:
        lines.append(f"No usage recorded in {report.period}.")
        return "\n".join(lines) + "\n"
    measure_header = tuple(name.upper() for name in _MEASURES)
    tables = []
    for kind in report.kinds:
        rows = report.of_kind(kind)
        header = _subject_header(kind)
        sums = tuple(sum(row.measures()[i] for row in rows) for i in range(len(_MEASURES)))
        body = [(*_subject_cells(report, row), *_numbers(row.measures())) for row in rows]
        total = ("TOTAL", *([""] * (len(header) - 1)), *_numbers(sums))
        title = f"{'API keys' if kind == 'key' else 'Users'} ({len(rows):,})"
        tables.append(_Table(title, header, [(*header, *measure_header), *body, total]))
    measure_widths = [
        max(len(line[len(table.header) + i]) for table in tables for line in table.lines) for i in range(len(_MEASURES))
    ]
    for table in tables:
        width = len(table.header)
        subject_widths = [max(len(line[i]) for line in table.lines) for i in range(width)]
        lines += ["", table.title]
        for line in table.lines:
            cells = [cell.ljust(size) for cell, size in zip(line[:width], subject_widths, strict=True)]
            cells += [cell.rjust(size) for cell, size in zip(line[width:], measure_widths, strict=True)]
            lines.append("  ".join(cells))
    return "\n".join(lines) + "\n"


def _numbers(measures: Sequence[float]) -> tuple[str, ...]:
    """Requests, cost points and rows as integers, subscription-seconds to a tenth (half up, as people round:
    12.25 is 12.3), with thousands separators."""
    requests, cost_points, rows, seconds = measures
    tenths = decimal.Decimal(repr(float(seconds))).quantize(_TENTH, decimal.ROUND_HALF_UP)
    return f"{int(requests):,}", f"{int(cost_points):,}", f"{int(rows):,}", f"{tenths:,}"


def _subject_header(kind: SubjectKind) -> tuple[str, ...]:
    return ("KEY_ID", "OWNER", "PLAN") if kind == "key" else ("USER",)


def _subject_cells(report: UsageReport, row: ReportRow) -> tuple[str, ...]:
    if row.subject_kind == "user":
        return (_printable(row.subject),)
    info = report.keys.get(row.subject)
    if info is None:
        return (_printable(row.subject), "-", "-")
    return (_printable(row.subject), _printable(info.owner), _printable(info.plan))


def csv_text(report: UsageReport) -> str:
    """The rows as CSV with a header (no total row): period, subject_kind, subject, owner, plan and the measures."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("period", "subject_kind", "subject", "owner", "plan", *_MEASURES))
    for row in report.rows:
        info = report.keys.get(row.subject) if row.subject_kind == "key" else None
        writer.writerow(
            (
                report.period,
                row.subject_kind,
                row.subject,
                "" if info is None else info.owner,
                "" if info is None else info.plan,
                row.requests,
                row.cost_points,
                row.rows,
                f"{row.subscription_seconds:.3f}",
            )
        )
    return buffer.getvalue()


# --- the command --------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: use a positive number, e.g. 10")
    return value


def _build_parser(out: TextIO) -> CommandParser:
    parser = CommandParser(
        prog="python -m edge usage", description="Report the usage the edges metered (EDGE_REDIS_URL).", out=out
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    report = commands.add_parser("report", help="usage per API key and per user for a period", out=out)
    report.add_argument(
        "--period",
        metavar="YYYY-MM|YYYY-MM-DD",
        help="a UTC month or day (default: the current period of EDGE_USAGE_PERIOD)",
    )
    report.add_argument("--kind", choices=tuple(_KINDS), default="all", help="which subjects (default: all)")
    report.add_argument(
        "--csv", metavar="FILE", help="also write the rows as CSV to FILE; '-' prints CSV instead of the table"
    )
    report.add_argument(
        "--no-owners", action="store_true", help="do not look up key owners and plans in EDGE_DATABASE_URL"
    )
    report.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for Redis, and for the database (default: {DEFAULT_TIMEOUT:g})",
    )
    return parser


@contextlib.contextmanager
def _quiet_library_logs() -> Iterator[None]:
    """The meter and the database pool log their failures for the serving edge; here the command reports
    them in one line itself, so their records must not reach Python's last-resort handler on stderr."""
    loggers = [logging.getLogger(name) for name in ("edge", "psycopg")]
    handler = logging.NullHandler()
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _load_settings(err: TextIO) -> EdgeSettings | None:
    from edge.configuration import load_settings, write_problems  # not imported for --help

    loaded = load_settings()
    write_problems(err, loaded.problems, loaded.warnings)
    return loaded.settings


def _store_problem(exc: UsageUnavailable, timeout: float) -> str:
    cause = exc.cause
    if cause is None:
        return str(exc)
    if isinstance(cause, TimeoutError) and not str(cause):
        return f"no answer within {timeout:g} s"
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


async def _report(
    args: argparse.Namespace,
    settings: EdgeSettings,
    periods: tuple[str, ...],
    err: TextIO,
    progress: Progress,
) -> UsageReport:
    from edge.redis_topology import open_shared_redis

    assert settings.redis_url is not None
    _cancel_on_ctrl_c()
    shared = open_shared_redis(settings.redis_url.get_secret_value(), timeout=args.timeout)
    ticker = asyncio.create_task(progress.tick())
    try:
        # A Redis or a RedisCluster: both answer what the meter sends (components.py gives it either too).
        client = cast("aioredis.Redis", shared.client)
        meter = RedisUsageMeter(client, period=settings.usage_period, timeout=args.timeout, report_timeout=args.timeout)
        report = await read_report(meter, periods, _KINDS[args.kind], progress)
        wanted = [row.subject for row in report.rows if row.subject_kind == "key"]
        if wanted and not args.no_owners and settings.database_url is not None:
            progress.update(f"usage report: looking up the owners of {len(wanted):,} keys")
            try:
                report.keys = await _key_infos(settings.database_url.get_secret_value(), args.timeout)
            except Exception as exc:  # psycopg.Error, PoolTimeout, OSError: the report stands without owners
                progress.close()  # the warning on a line of its own; the progress line comes back on its next draw
                err.write(
                    f"{PROGRAM}: warning: key owners are not shown: the key database (EDGE_DATABASE_URL) "
                    f"could not be read ({type(exc).__name__})\n"
                )
        return report
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        with contextlib.suppress(Exception):
            await shared.aclose()


def _cancel_on_ctrl_c() -> None:
    """Ctrl-C cancels the report's task, and again every half second until it has ended: redis-py can lose a
    cancellation that arrives while it sets up a connection, and the report would then wait for Redis for
    up to ``--timeout`` seconds."""
    task = asyncio.current_task()
    if task is None:
        return
    loop = asyncio.get_running_loop()

    def cancel() -> None:
        if not task.done():
            task.cancel()
            loop.call_later(0.5, cancel)

    loop.add_signal_handler(signal.SIGINT, cancel)


def _write_csv(path: str, text: str, err: TextIO) -> bool:
    try:
        with open(path, "w", encoding="utf-8", newline="") as file:
            file.write(text)
    except OSError as exc:
        err.write(f"error: --csv {path}: cannot be written ({exc.strerror or exc})\n")
        return False
    return True


def main(
    argv: list[str],
    *,
    settings: EdgeSettings | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    progress_delay: float = 1.0,
    now: Callable[[], float] = time.time,
) -> int:
    """Run one ``usage`` command; return the exit code (see the module docstring). ``settings`` None reads the
    edge's configuration (after the arguments, so ``--help`` needs none); ``out`` and ``err`` default to the
    streams ``sys`` has at the call; ``progress_delay`` is how long the work runs before a progress line shows.

    Example: ``main(["report", "--period", "2026-12", "--csv", "usage.csv"])``.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = parse_command(_build_parser(out), argv, command="usage", err=err, usage_exit=EXIT_USAGE)
    if isinstance(args, int):
        return args
    if args.period is not None:
        try:
            periods = parse_period(args.period)
        except ValueError as exc:
            err.write(f"error: {exc}\n")
            return EXIT_USAGE
    if settings is None:
        settings = _load_settings(err)
        if settings is None:
            return EXIT_USAGE
    if settings.redis_url is None:
        err.write(
            f"{PROGRAM}: EDGE_REDIS_URL is required for the usage report: without it each edge process keeps its "
            "usage in its own memory\n"
        )
        return EXIT_USAGE
    if args.period is None:
        periods = parse_period(period_of(now(), settings.usage_period)[0])
    progress = Progress(err, delay=progress_delay)
    try:
        with _quiet_library_logs():
            report = asyncio.run(_report(args, settings, periods, err, progress))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C (see _cancel_on_ctrl_c)
        progress.close()
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    except UsageUnavailable as exc:
        progress.close()
        err.write(f"error: the usage store (EDGE_REDIS_URL) could not be read: {_store_problem(exc, args.timeout)}\n")
        return EXIT_STORE
    progress.close()
    if len(periods) == 1 and settings.usage_period == "month" and not report.rows:
        err.write(
            f"{PROGRAM}: warning: EDGE_USAGE_PERIOD is month: edges store usage by day only with "
            "EDGE_USAGE_PERIOD=day; report the month instead\n"
        )
    data = csv_text(report) if args.csv is not None else ""
    if args.csv == "-":
        out.write(data)
        return EXIT_OK
    if args.csv is not None and not _write_csv(args.csv, data, err):
        return EXIT_USAGE
    out.write(table_text(report))
    return EXIT_OK
