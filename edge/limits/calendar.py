"""Calendar quota windows and the quota counter step: pure functions, time passed in as ``now``.

A period is a calendar DAY, WEEK (ISO: starts Monday 00:00) or MONTH, in UTC shifted by the plan's
offset: with ``offset_seconds=+7200`` a DAY runs from 22:00 UTC the day before to 22:00 UTC.

The arithmetic is integer day counting (Howard Hinnant's ``days_from_civil`` / ``civil_from_days``),
not ``datetime``: it is faster, has no time-zone database, and the Redis Lua script in
``redis_store.py`` uses the same algorithm so both limiters agree on every boundary.

    >>> period_window(1_700_000_000.0, "DAY", 7200)   # 2023-11-14 22:13:20 UTC, 00:13 at +02:00
    (1699999200.0, 1700085600.0)
"""

from __future__ import annotations

import math
from typing import Final, Literal, final

__all__ = ["Period", "QuotaResult", "days_from_civil", "period_window", "quota_hit"]

Period = Literal["DAY", "WEEK", "MONTH"]
DAY_SECONDS = 86_400


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (negative before the epoch)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _year_month(days: int) -> tuple[int, int]:
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month


def period_window(now: float, period: Period, offset_seconds: int) -> tuple[float, float]:
    """``(start, end)`` in epoch seconds of the calendar period containing ``now``; ``start <= now < end``.

    ``offset_seconds`` is the plan's UTC offset (``Quota.offset_seconds``): local = UTC + offset, so the
    boundaries are local midnights. An instant exactly on a boundary belongs to the period it starts.
    """
    days = math.floor(now + offset_seconds) // DAY_SECONDS
    if period == "DAY":
        first, last = days, days + 1
    elif period == "WEEK":
        first = days - (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is weekday 0
        last = first + 7
    elif period == "MONTH":
        year, month = _year_month(days)
        first = days_from_civil(year, month, 1)
        last = days_from_civil(year + 1, 1, 1) if month == 12 else days_from_civil(year, month + 1, 1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return float(first * DAY_SECONDS - offset_seconds), float(last * DAY_SECONDS - offset_seconds)


@final
class QuotaResult:
    """Outcome of one quota step (a plain class, as ``GcraResult``).

    ``remaining`` is what is left after this request (before it, when refused); ``retry_after`` is 0 when
    allowed and ``math.inf`` when ``cost > limit`` (never satisfiable); ``reset_after`` is the time to the
    period end.
    """

    __slots__ = ("allowed", "remaining", "reset_after", "retry_after", "used")

    def __init__(self, allowed: bool, used: int, remaining: int, retry_after: float, reset_after: float) -> None:
        self.allowed: Final = allowed
        self.used: Final = used
        self.remaining: Final = remaining
        self.retry_after: Final = retry_after
        self.reset_after: Final = reset_after

    def fields(self) -> tuple[bool, int, int, float, float]:
        return (self.allowed, self.used, self.remaining, self.retry_after, self.reset_after)

    def __eq__(self, other: object) -> bool:
        return self.fields() == other.fields() if isinstance(other, QuotaResult) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.fields())

    def __repr__(self) -> str:
        return (
            f"QuotaResult(allowed={self.allowed!r}, used={self.used!r}, remaining={self.remaining!r}, "
            f"retry_after={self.retry_after!r}, reset_after={self.reset_after!r})"
        )


def quota_hit(used: int, *, limit: int, cost: int, now: float, window_end: float) -> QuotaResult:
    """Count ``cost`` operations against ``used`` of ``limit`` in the current window, all or nothing.

    ``used`` is the count already recorded in the window containing ``now`` (0 for a fresh window).
    A refused request changes nothing: ``result.used == used``.
    """
    reset_after = window_end - now
    total = used + cost
    if total <= limit:
        return QuotaResult(True, total, limit - total, 0.0, reset_after)
    return QuotaResult(False, used, max(limit - used, 0), math.inf if cost > limit else reset_after, reset_after)
