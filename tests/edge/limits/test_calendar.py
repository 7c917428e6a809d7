"""Calendar quota windows (DAY, ISO WEEK, MONTH; UTC offsets) and the quota step, as pure functions."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from edge.limits.calendar import Period, period_window, quota_hit
from tests.edge.limits.conftest import at

H = 3600


@pytest.mark.parametrize(
    ("now", "period", "offset", "start", "end"),
    [
        ("2024-03-10T12:00:00", "DAY", 0, "2024-03-10T00:00:00", "2024-03-11T00:00:00"),
        ("2024-03-10T21:59:59", "DAY", 2 * H, "2024-03-09T22:00:00", "2024-03-10T22:00:00"),
        ("2024-03-10T22:00:00", "DAY", 2 * H, "2024-03-10T22:00:00", "2024-03-11T22:00:00"),
        ("2024-03-10T03:00:00", "DAY", -5 * H, "2024-03-09T05:00:00", "2024-03-10T05:00:00"),
        ("2024-03-10T05:00:00", "DAY", -5 * H, "2024-03-10T05:00:00", "2024-03-11T05:00:00"),
        ("2024-03-10T10:30:00", "DAY", 14 * H, "2024-03-10T10:00:00", "2024-03-11T10:00:00"),
        ("2024-03-10T12:00:00", "DAY", 5 * H + 30 * 60, "2024-03-09T18:30:00", "2024-03-10T18:30:00"),
        ("1969-12-31T12:00:00", "DAY", 0, "1969-12-31T00:00:00", "1970-01-01T00:00:00"),
        ("2024-03-10T12:00:00", "WEEK", 0, "2024-03-04T00:00:00", "2024-03-11T00:00:00"),
        ("2024-03-11T00:00:00", "WEEK", 0, "2024-03-11T00:00:00", "2024-03-18T00:00:00"),
        ("2024-03-10T22:30:00", "WEEK", 2 * H, "2024-03-10T22:00:00", "2024-03-17T22:00:00"),
        ("2024-03-11T07:59:59", "WEEK", -8 * H, "2024-03-04T08:00:00", "2024-03-11T08:00:00"),
        ("2024-12-31T12:00:00", "WEEK", 0, "2024-12-30T00:00:00", "2025-01-06T00:00:00"),
        ("2024-02-15T00:00:00", "MONTH", 0, "2024-02-01T00:00:00", "2024-03-01T00:00:00"),
        ("2023-02-15T00:00:00", "MONTH", 0, "2023-02-01T00:00:00", "2023-03-01T00:00:00"),
        ("2000-02-29T23:59:59", "MONTH", 0, "2000-02-01T00:00:00", "2000-03-01T00:00:00"),
        ("2100-02-28T12:00:00", "MONTH", 0, "2100-02-01T00:00:00", "2100-03-01T00:00:00"),
        ("2024-12-31T23:59:59", "MONTH", 0, "2024-12-01T00:00:00", "2025-01-01T00:00:00"),
        ("2025-01-01T00:00:00", "MONTH", 0, "2025-01-01T00:00:00", "2025-02-01T00:00:00"),
        ("2024-12-31T22:00:00", "MONTH", 2 * H, "2024-12-31T22:00:00", "2025-01-31T22:00:00"),
        ("2025-01-01T04:59:59", "MONTH", -5 * H, "2024-12-01T05:00:00", "2025-01-01T05:00:00"),
        ("2024-02-29T23:00:00", "MONTH", 2 * H, "2024-02-29T22:00:00", "2024-03-31T22:00:00"),
        ("2024-03-01T01:00:00", "MONTH", -2 * H, "2024-02-01T02:00:00", "2024-03-01T02:00:00"),
        ("2024-04-30T12:00:00", "MONTH", 0, "2024-04-01T00:00:00", "2024-05-01T00:00:00"),
    ],
)
def test_period_window_table(now: str, period: Period, offset: int, start: str, end: str) -> None:
    assert period_window(at(now), period, offset) == (at(start), at(end))


def test_instant_just_before_a_boundary_belongs_to_the_earlier_period() -> None:
    boundary = at("2024-03-11T00:00:00")
    assert period_window(boundary - 0.001, "WEEK", 0)[1] == boundary
    assert period_window(boundary, "WEEK", 0)[0] == boundary


def _reference(now: float, period: Period, offset: int) -> tuple[float, float]:
    local = datetime.fromtimestamp(now + offset, UTC)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "DAY":
        start, end = day, day + timedelta(days=1)
    elif period == "WEEK":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start.timestamp() - offset, end.timestamp() - offset


@pytest.mark.parametrize("period", ["DAY", "WEEK", "MONTH"])
def test_period_window_matches_datetime_on_random_instants(period: Period) -> None:
    rng = random.Random(20261121)
    for _ in range(2000):
        now = rng.uniform(at("1990-01-01T00:00:00"), at("2110-01-01T00:00:00"))
        offset = rng.randrange(-14 * 4, 14 * 4 + 1) * 15 * 60
        start, end = period_window(now, period, offset)
        assert (start, end) == _reference(now, period, offset)
        assert start <= now < end


def test_quota_hit_counts_all_or_nothing() -> None:
    assert quota_hit(0, limit=10, cost=4, now=0.0, window_end=60.0).fields() == (True, 4, 6, 0.0, 60.0)
    assert quota_hit(8, limit=10, cost=2, now=0.0, window_end=60.0).fields() == (True, 10, 0, 0.0, 60.0)
    assert quota_hit(8, limit=10, cost=3, now=50.0, window_end=60.0).fields() == (False, 8, 2, 10.0, 10.0)
    refused = quota_hit(0, limit=10, cost=11, now=0.0, window_end=60.0)
    assert (refused.allowed, refused.used, refused.retry_after) == (False, 0, math.inf)
