"""Which limit the RateLimit fields describe, and how decisions render as response fields."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.limits.calendar import QuotaResult
from edge.limits.decision import ALLOWED_UNLIMITED, LimitDecision, ceil_seconds, combine
from edge.limits.gcra import GcraResult
from edge.limits.redis_store import limit_decision


def rate(allowed: bool, remaining: int, retry: float = 0.0, reset: float = 1.0) -> GcraResult:
    return GcraResult(allowed, 0.0, remaining, retry, reset)


def quota(allowed: bool, remaining: int, retry: float = 0.0, reset: float = 3600.0) -> QuotaResult:
    return QuotaResult(allowed, 0, remaining, retry, reset)


def test_allowed_describes_the_limit_with_fewest_remaining() -> None:
    assert combine(rate(True, 9), 10, quota(True, 1), 1000) == LimitDecision(True, None, 1000, 1, 3600, None)
    assert combine(rate(True, 0, reset=0.4), 10, quota(True, 500), 1000) == LimitDecision(True, None, 10, 0, 1, None)


def test_on_a_tie_the_limit_resetting_later_is_described() -> None:
    assert combine(rate(True, 3), 10, quota(True, 3), 1000).limit == 1000


def test_refused_by_the_rate_describes_the_rate_with_retry_after_rounded_up() -> None:
    decision = combine(rate(False, 0, retry=0.2, reset=4.2), 10, quota(True, 50), 1000)
    assert decision == LimitDecision(False, "rate-limited", 10, 0, 5, 1)


def test_refused_by_both_reports_the_quota_and_the_longer_wait() -> None:
    decision = combine(rate(False, 0, retry=2.0), 10, quota(False, 0, retry=30.0, reset=30.0), 1000)
    assert (decision.code, decision.limit, decision.retry_after) == ("quota-exceeded", 1000, 30)


def test_a_request_that_can_never_fit_has_no_retry_after() -> None:
    decision = combine(rate(False, 5, retry=math.inf), 5, None, 0)
    assert (decision.allowed, decision.retry_after) == (False, None)
    assert (b"retry-after", b"1") not in decision.headers()
    assert all(name != b"retry-after" for name, _ in decision.headers())


def test_headers_of_allowed_and_refused_decisions() -> None:
    assert LimitDecision(True, None, 10, 7, 2, None).headers() == [
        (b"ratelimit-limit", b"10"),
        (b"ratelimit-remaining", b"7"),
        (b"ratelimit-reset", b"2"),
    ]
    assert LimitDecision(False, "quota-exceeded", 100, 0, 3600, 3600).headers()[-1] == (b"retry-after", b"3600")


def test_no_limit_means_no_ratelimit_fields() -> None:
    assert ALLOWED_UNLIMITED.headers() == []
    assert LimitDecision(False, "limiter-unavailable", 0, 0, 0, 1, degraded=True).headers() == [(b"retry-after", b"1")]


def test_ceil_seconds_ignores_float_noise() -> None:
    assert [ceil_seconds(x) for x in (0.0, 1e-9, 0.3, 1.0, 1.0000000001, -2.0)] == [0, 0, 1, 1, 1, 0]


def test_decisions_compare_and_hash_by_value() -> None:
    same = LimitDecision(False, "rate-limited", 10, 0, 5, 1)
    assert same == LimitDecision(False, "rate-limited", 10, 0, 5, 1)
    assert same != LimitDecision(False, "rate-limited", 10, 0, 5, 1, degraded=True)
    assert same != (False, "rate-limited", 10, 0, 5, 1)
    assert len({same, LimitDecision(False, "rate-limited", 10, 0, 5, 1), ALLOWED_UNLIMITED}) == 2
    assert repr(same) == (
        "LimitDecision(allowed=False, code='rate-limited', limit=10, remaining=0, reset_seconds=5, "
        "retry_after=1, degraded=False)"
    )


# --- the Redis scripts' reply read field by field ----------------------------------------------------------

_RESET = st.one_of(st.floats(min_value=0.0, max_value=3e6), st.sampled_from([0.0, 1.0, 2.0 + 1e-7, 2.0 + 1e-6]))
_RETRY = st.one_of(_RESET, st.just(math.inf))  # inf: the request can never fit


def _text(value: float) -> bytes:
    """A number as the scripts write it (``%.17g``, Lua's ``inf``)."""
    return b"inf" if value == math.inf else b"%.17g" % value


@settings(max_examples=400, deadline=None)
@given(
    st.booleans(),
    st.integers(min_value=0, max_value=10**12),
    _RETRY,
    _RESET,
    st.booleans(),
    st.integers(min_value=0, max_value=10**12),
    _RETRY,
    _RESET,
    st.sampled_from(["both", "rate", "quota"]),
)
def test_the_decision_read_from_a_scripts_reply_is_combines(
    rate_ok: bool,
    rate_remaining: int,
    rate_retry: float,
    rate_reset: float,
    quota_ok: bool,
    quota_remaining: int,
    quota_retry: float,
    quota_reset: float,
    limits: str,
) -> None:
    """``limit_decision`` reads only some of the HIT script's ten fields: it decides as ``combine`` on all of them."""
    fields = [
        b"1" if rate_ok else b"0",
        b"1700000000.123456",
        b"%d" % rate_remaining,
        _text(rate_retry),
        _text(rate_reset),
        b"1" if quota_ok else b"0",
        b"7",
        b"%d" % quota_remaining,
        _text(quota_retry),
        _text(quota_reset),
    ]
    with_rate, with_quota = limits in ("both", "rate"), limits in ("both", "quota")
    expected = combine(
        GcraResult(rate_ok, 1700000000.123456, rate_remaining, rate_retry, rate_reset) if with_rate else None,
        20 if with_rate else 0,
        QuotaResult(quota_ok, 7, quota_remaining, quota_retry, quota_reset) if with_quota else None,
        1000 if with_quota else 0,
    )
    assert limit_decision(fields, 20 if with_rate else 0, 1000 if with_quota else 0) == expected


def test_ties_in_remaining_are_broken_by_the_reset_read_from_the_reply() -> None:
    fields = b"1 0 3 0 0.5 1 97 3 0 0.25".split()
    assert limit_decision(fields, 10, 100) == combine(
        GcraResult(True, 0.0, 3, 0.0, 0.5), 10, QuotaResult(True, 97, 3, 0.0, 0.25), 100
    )
    assert limit_decision(fields, 10, 100).limit == 10  # the rate resets later
