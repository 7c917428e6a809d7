"""Limiter and cost budgets shared by every edge replica through Redis: one round trip per request.

Each call runs one Lua script (``_lua.py``) with EVALSHA, loaded again on NOSCRIPT (after a Redis
restart, failover or ``SCRIPT FLUSH``); ``RedisLimiter.admit`` applies the rate, the quota and the cost
budget's charge in one script when the budgets share its client and prefix. The refund once Hasura has
answered (``RedisCostBudgets.refund_soon``) holds no request: on the lean client its EVALSHA goes out
with the loop turn's other commands and a callback reads the reply; ``drain()`` waits for those in flight.
The rate+quota step is atomic: a request refused by either limit writes nothing. Keys carry TTLs (the time until the
state is "full" again, plus ``grace``) so idle keys disappear by themselves. Key layout, with a hash tag
so the three keys of a caller land in the same Redis Cluster slot (one script may use them all)::

    {prefix}{<len(plan)>:<plan>:<key>}:r   GCRA theoretical arrival time (string)
    {prefix}{<len(plan)>:<plan>:<key>}:q   quota: hash w = window start, n = operations used
    {prefix}{<len(plan)>:<plan>:<key>}:b   cost budget TAT (string)

(``RedisLimiter.admit`` writes ``:r`` and ``:q`` as ``hit`` does, then ``:b`` as ``charge`` does when both
allowed: the request the budget refuses has used its rate and quota units, as with the two calls.)

Clock: by default the script reads Redis ``TIME``. Every replica then decides against one clock, so
clock skew between edge hosts cannot let one replica refill a bucket early or count into the wrong
quota period; only the Redis primary's clock matters (after a failover, against the new primary's, which
NTP keeps within milliseconds). Passing ``clock=`` makes the edge send its own ``now`` instead: the tests
use this to inject time; in production it would let replica skew leak into decisions, so leave it unset.

Clients: the stores take a ``LeanRedis`` (``resp_client.py``: one pipelined connection, what the edge
uses for ``redis://`` and ``rediss://``) or any redis-py client (``RedisPyScripts`` adapts it: one server,
Sentinel's master, a Cluster). Both run the same scripts on the same keys, so replicas on either client
share one state (a rolling upgrade mixes them safely).

Failures (connection refused, timeouts, script errors) never raise. With ``failure_mode="open"`` the
request is allowed and the decision has ``degraded=True``; with ``"closed"`` it is refused with code
``"limiter-unavailable"`` (the caller answers 503). Either way ``store_errors`` is incremented and a
warning is logged at most once per ``log_interval`` seconds (exception type and a redacted message, never
a URL password). Each call is capped at ``timeout`` seconds (default 0.25) whatever the client's own
settings, and the next request simply tries Redis again: both clients reconnect, so recovery needs no
restart. Use ``redis_client_from_url`` to build a redis-py client with short socket timeouts and no
retries (one server; ``edge.redis_topology.open_shared_redis`` builds the same for Sentinel and Cluster,
where the hash tag above keeps each script's keys in one slot, and the ``LeanRedis`` for one server).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from math import ceil
from typing import Any, Final, Literal, Protocol, final

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from edge.limits import _lua
from edge.limits.base import CostBudgets, admit_in_turn
from edge.limits.decision import (
    ALLOWED_UNLIMITED,
    LIMITER_UNAVAILABLE,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    Admission,
    BudgetDecision,
    LimitDecision,
    budget_decision,
    retry_seconds,
)
from edge.limits.gcra import EPSILON, gcra_available
from edge.limits.resp_client import LeanRedis, LuaScript, ReplyCallback, ScriptArg, encode_args
from edge.limits.resp_client import NoScriptError as LeanNoScriptError
from edge.plans import CostBudget, Plan
from edge.store_health import StoreHealth

__all__ = [
    "DEFAULT_PREFIX",
    "FailureMode",
    "RedisCostBudgets",
    "RedisLimiter",
    "RedisPyScripts",
    "ScriptClient",
    "StoreClient",
    "redis_client_from_url",
]

logger = logging.getLogger(__name__)

FailureMode = Literal["open", "closed"]
DEFAULT_PREFIX = "edge:limits:"
DEFAULT_TIMEOUT = 0.25
DEFAULT_GRACE_MS = 1_000

HIT = LuaScript(_lua.HIT)
ADMIT = LuaScript(_lua.ADMIT)
BUDGET_CHARGE = LuaScript(_lua.BUDGET_CHARGE)
BUDGET_REFUND = LuaScript(_lua.BUDGET_REFUND)

DEGRADED_OPEN = LimitDecision(True, None, 0, 0, 0, None, degraded=True)
DEGRADED_CLOSED = LimitDecision(False, LIMITER_UNAVAILABLE, 0, 0, 0, 1, degraded=True)

# The lean client's commands, encoded here rather than by LuaScript.evalsha_command: per request only the caller's
# key is new, so the rest (the plan's arguments, the start of the keys) is kept encoded per plan (_PlanCommands).
_ADMIT_HEAD: Final = ADMIT.head(3, 11)
_REFUND_HEAD: Final = BUDGET_REFUND.head(1, 4)
_CACHED_PLANS: Final = 1024
_CACHED_ARGS: Final = 256
_SIZES: Final = [b"%d" % size for size in range(512)]  # a key's length, as RESP writes it, without formatting it


def _size(data: bytes, extra: int) -> bytes:
    """``b"%d" % (len(data) + extra)``."""
    size = len(data) + extra
    return _SIZES[size] if size < 512 else b"%d" % size


RedisPyClient = aioredis.Redis | RedisCluster
StoreClient = RedisPyClient | LeanRedis
"""What the stores are given: a redis-py client (any topology) or a ``LeanRedis``."""


def redis_client_from_url(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> aioredis.Redis:
    """A client suited to the limiter: short connect/socket timeouts, no retries (the limiter decides)."""
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


class ScriptClient(Protocol):
    """What the stores need from a Redis client: run one of their Lua scripts within ``timeout`` seconds.

    ``LeanRedis`` (``edge.limits.resp_client``) is one; ``RedisPyScripts`` adapts any redis-py client.
    Either raises for every failure (the store turns it into a decision) and returns the script's reply.
    """

    async def run_script(
        self, script: LuaScript, keys: Sequence[str], args: tuple[ScriptArg, ...], timeout: float
    ) -> object: ...


class RedisPyScripts:
    """``ScriptClient`` on a redis-py client (one server, Sentinel's master, or a Cluster): EVALSHA, and on
    NOSCRIPT one SCRIPT LOAD and EVALSHA again; the whole call capped at ``timeout`` whatever the client's
    own settings."""

    __slots__ = ("client",)

    def __init__(self, client: RedisPyClient) -> None:
        self.client = client

    async def run_script(
        self, script: LuaScript, keys: Sequence[str], args: tuple[ScriptArg, ...], timeout: float
    ) -> object:
        client = self.client
        async with asyncio.timeout(timeout):
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                await client.script_load(script.source)
                return await client.evalsha(script.sha, len(keys), *keys, *args)


def _reply_bytes(reply: object) -> bytes:
    # The scripts return one line of space-separated numbers; normalise decode_responses=True clients.
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, str):
        return reply.encode()
    raise TypeError(f"unexpected script reply {type(reply).__name__}")


class _RedisStore:
    def __init__(
        self,
        client: StoreClient,
        *,
        failure_mode: FailureMode = "open",
        clock: Callable[[], float] | None = None,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        grace_ms: int = DEFAULT_GRACE_MS,
        log_interval: float = 10.0,
    ) -> None:
        if failure_mode not in ("open", "closed"):
            raise ValueError(f"failure_mode must be 'open' or 'closed', not {failure_mode!r}")
        self.client = client
        self._lean = client if isinstance(client, LeanRedis) else None
        self._scripts: ScriptClient = client if isinstance(client, LeanRedis) else RedisPyScripts(client)
        self._commands: dict[str, _PlanCommands] = {}
        self.failure_mode: FailureMode = failure_mode
        self._clock = clock
        self._prefix = prefix
        self._timeout = timeout
        self._grace_ms = grace_ms
        self.health = StoreHealth("limiter_store", logger, log_interval=log_interval)
        self._setup()

    def _setup(self) -> None:
        """Subclasses prepare their own state here."""

    @property
    def store_errors(self) -> int:
        return self.health.errors

    def _key(self, plan_name: str, key: str) -> str:
        return f"{self._prefix}{{{len(plan_name)}:{plan_name}:{key}}}"

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    async def _call(self, script: LuaScript, keys: Sequence[str], args: tuple[ScriptArg, ...]) -> bytes:
        result = await self._scripts.run_script(script, keys, args, self._timeout)
        return result if type(result) is bytes else _reply_bytes(result)

    async def _run(self, script: LuaScript, keys: Sequence[str], args: tuple[ScriptArg, ...]) -> bytes | None:
        try:
            result = await self._call(script, keys, args)
        except Exception as exc:  # the limiter never raises to the request path
            self.health.failed(exc, failure_mode=self.failure_mode)
            return None
        if self.health.failing:
            self.health.succeeded()
        return result

    async def _send(self, script: LuaScript, keys: Sequence[str], args: tuple[ScriptArg, ...]) -> None:
        """``_run`` for a script whose reply says nothing (the refund's 0 or 1)."""
        try:
            await self._scripts.run_script(script, keys, args, self._timeout)
        except Exception as exc:  # the limiter never raises to the request path
            self.health.failed(exc, failure_mode=self.failure_mode)
            return
        if self.health.failing:
            self.health.succeeded()


class RedisLimiter(_RedisStore):
    """``Limiter`` on Redis: rate (GCRA) and quota in one Lua script, shared by all replicas."""

    def _setup(self) -> None:
        self._plans: dict[int, tuple[Plan, tuple[str | int, ...]]] = {}
        self._twin: RedisCostBudgets | None = None

    def _plan_args(self, plan: Plan) -> tuple[str | int, ...]:
        # The plan's part of ARGV, per Plan object (Quota.offset_seconds parses a string each time).
        cached = self._plans.get(id(plan))
        if cached is not None and cached[0] is plan:
            return cached[1]
        rate, quota = plan.rate, plan.quota
        args = (
            "" if rate is None else repr(rate.requests_per_second),
            0 if rate is None else rate.burst,
            "" if quota is None else quota.limit,
            "" if quota is None else quota.period,
            0 if quota is None else quota.offset_seconds,
            self._grace_ms,
        )
        if len(self._plans) > 1024:
            self._plans.clear()
        self._plans[id(plan)] = (plan, args)
        return args

    async def hit(self, key: str, plan_name: str, plan: Plan, *, operations: int = 1) -> LimitDecision:
        rate = plan.rate
        quota = plan.quota
        if rate is None and quota is None:
            return ALLOWED_UNLIMITED
        if operations < 0:
            raise ValueError("operations must not be negative")
        base = self._key(plan_name, key)
        now = "" if self._clock is None else repr(self._clock())
        reply = await self._run(HIT, (base + ":r", base + ":q"), (now, operations, *self._plan_args(plan)))
        if reply is None:
            return DEGRADED_OPEN if self.failure_mode == "open" else DEGRADED_CLOSED
        return self._limit_decision(plan, reply.split())

    @staticmethod
    def _limit_decision(plan: Plan, f: list[bytes]) -> LimitDecision:
        # The HIT script's ten fields (ADMIT's first ten).
        rate, quota = plan.rate, plan.quota
        return limit_decision(f, 0 if rate is None else rate.burst, 0 if quota is None else quota.limit)

    def _shares_state(self, budgets: CostBudgets) -> bool:
        # The budgets' keys are this limiter's ``:b`` keys: same client, same prefix (the hash tag's slot).
        if budgets is self._twin:
            return True
        if isinstance(budgets, RedisCostBudgets) and budgets.client is self.client and budgets._prefix == self._prefix:
            self._twin = budgets
            return True
        return False

    async def admit(
        self, key: str, plan_name: str, plan: Plan, *, operations: int, points: int, budgets: CostBudgets
    ) -> Admission:
        commands = self._commands.get(plan_name)
        if commands is None or commands.plan is not plan:
            commands = self._plan_commands(plan_name, plan)
        budget = commands.budget
        if budget is None or not (commands.burst or commands.limit) or not self._shares_state(budgets):
            return await admit_in_turn(self, budgets, key, plan_name, plan, operations=operations, points=points)
        assert isinstance(budgets, RedisCostBudgets)
        if operations < 0:
            raise ValueError("operations must not be negative")
        if points < 0:
            raise ValueError("points must not be negative")
        lean = self._lean
        try:
            if lean is not None:  # the lean client: its reply's future awaited here, no coroutine per layer
                command = self._admit_command(commands, key, budgets, operations, points)
                conn = lean.ready()
                if conn is None:
                    result = await lean.run_command(ADMIT, command, self._timeout)
                else:
                    deadline = conn.loop.time() + self._timeout
                    result = await conn.request(command, deadline)
                    if type(result) is not bytes:
                        result = await lean.settle(ADMIT, command, result, deadline)
                reply = result if type(result) is bytes else _reply_bytes(result)
            else:
                base = self._key(plan_name, key)
                now = "" if self._clock is None else repr(self._clock())
                args = (now, operations, *self._plan_args(plan), budgets._rate(budget), budget.maximum, points)
                reply = await self._call(ADMIT, (base + ":r", base + ":q", base + ":b"), args)
        except Exception as exc:  # each store counts and degrades as its own call would have
            self.health.failed(exc, failure_mode=self.failure_mode)
            if self.failure_mode == "closed":
                return Admission(DEGRADED_CLOSED, None)
            budgets.health.failed(exc, failure_mode=budgets.failure_mode)
            return Admission(DEGRADED_OPEN, budgets._degraded(budget, points))
        if self.health.failing:
            self.health.succeeded()
        if budgets.health.failing:
            budgets.health.succeeded()
        f = reply.split()
        decision = limit_decision(f, commands.burst, commands.limit)
        if f[10] == b"-":
            return Admission(decision, None)
        # budget_decision(f[10] == b"1", float(f[11]), tat, now=float(f[13]), budget=budget, points=points), with
        # the budget's figures kept per plan and only the fields it reads: retry_after when refused, now when the
        # budget is not full (float() of a 17-digit number costs one to two thousand instructions).
        allowed = f[10] == b"1"
        maximum, restore_rate = commands.maximum, commands.restore_rate
        if f[12] == b"-":
            available = float(maximum)
        else:
            available = gcra_available(float(f[12]), now=float(f[13]), rate=restore_rate, burst=maximum)
        retry = None if allowed else retry_seconds(float(f[11]))
        return Admission(decision, BudgetDecision(allowed, points, maximum, available, restore_rate, retry))

    def _plan_commands(self, plan_name: str, plan: Plan) -> _PlanCommands:
        if len(self._commands) >= _CACHED_PLANS:
            self._commands.clear()
        commands = self._commands[plan_name] = _PlanCommands(plan, plan.cost_budget, self._key(plan_name, ""))
        return commands

    def _admit_command(
        self, commands: _PlanCommands, key: str, budgets: RedisCostBudgets, operations: int, points: int
    ) -> bytes:
        """``ADMIT``'s EVALSHA on the lean client: the bytes ``ADMIT.evalsha_command`` makes of ``admit``'s keys
        and arguments, with the plan's part kept encoded."""
        if self._clock is None:
            args = commands.args.get((operations, points))
            if args is None:
                args = self._admit_args("", commands, budgets, operations, points)
                if len(commands.args) >= _CACHED_ARGS:
                    commands.args.clear()
                commands.args[(operations, points)] = args
        else:
            args = self._admit_args(repr(self._clock()), commands, budgets, operations, points)
        start = commands.key_start
        name = key.encode()
        size = _size(name, len(start) + 3)
        return b"%s$%s\r\n%s%s}:r\r\n$%s\r\n%s%s}:q\r\n$%s\r\n%s%s}:b\r\n%s" % (
            _ADMIT_HEAD,
            size,
            start,
            name,
            size,
            start,
            name,
            size,
            start,
            name,
            args,
        )

    def _admit_args(
        self, now: str, commands: _PlanCommands, budgets: RedisCostBudgets, operations: int, points: int
    ) -> bytes:
        budget = commands.budget
        assert commands.plan is not None and budget is not None
        plan_args = self._plan_args(commands.plan)
        return encode_args((now, operations, *plan_args, budgets._rate(budget), budget.maximum, points))


def limit_decision(f: list[bytes], burst: int, limit: int) -> LimitDecision:
    """``combine``'s decision from the HIT script's ten fields (ADMIT's first ten), reading only the ones it
    uses: ``float()`` of a 17-digit number costs one to two thousand instructions. ``burst`` is 0 for a plan
    without a rate, ``limit`` 0 for one without a quota (their fields are then not read).

    Fields: rate ``ok tat remaining retry_after reset_after``, quota ``ok used remaining retry_after reset_after``.
    """
    # reset_after is never negative, so ceil(x - EPSILON) is ceil_seconds(x) without the call.
    if limit and f[5] != b"1":
        wait = float(f[8])
        if burst and f[0] != b"1":
            wait = max(wait, float(f[3]))
        return LimitDecision(False, QUOTA_EXCEEDED, limit, int(f[7]), ceil(float(f[9]) - EPSILON), retry_seconds(wait))
    if burst and f[0] != b"1":
        return LimitDecision(
            False, RATE_LIMITED, burst, int(f[2]), ceil(float(f[4]) - EPSILON), retry_seconds(float(f[3]))
        )
    if limit:
        quota_remaining = int(f[7])
        if not burst:
            return LimitDecision(True, None, limit, quota_remaining, ceil(float(f[9]) - EPSILON), None)
        rate_remaining = int(f[2])
        if quota_remaining < rate_remaining:
            return LimitDecision(True, None, limit, quota_remaining, ceil(float(f[9]) - EPSILON), None)
        if quota_remaining == rate_remaining:
            quota_reset, rate_reset = float(f[9]), float(f[4])
            if quota_reset >= rate_reset:
                return LimitDecision(True, None, limit, quota_remaining, ceil(quota_reset - EPSILON), None)
            return LimitDecision(True, None, burst, rate_remaining, ceil(rate_reset - EPSILON), None)
        return LimitDecision(True, None, burst, rate_remaining, ceil(float(f[4]) - EPSILON), None)
    return LimitDecision(True, None, burst, int(f[2]), ceil(float(f[4]) - EPSILON), None)


@final
class _PlanCommands:
    """What a store keeps per plan name for its lean commands and decisions, valid for one ``Plan`` (the
    limiter's) or ``CostBudget`` (the budgets'), both immutable: the start of the keys (``_key`` up to the
    caller's key), the encoded script arguments by the ones that change per request, and the figures the
    decisions read (pydantic attributes cost a lookup each)."""

    __slots__ = ("args", "budget", "burst", "key_start", "limit", "maximum", "plan", "refund_args", "restore_rate")

    def __init__(self, plan: Plan | None, budget: CostBudget | None, key_start: str) -> None:
        self.plan: Final = plan
        self.budget: Final = budget
        self.key_start: Final = key_start[:-1].encode()  # without the closing brace of the hash tag
        self.args: Final[dict[tuple[int, int], bytes]] = {}  # ADMIT's, by operations and points
        self.refund_args: Final[dict[int, bytes]] = {}  # BUDGET_REFUND's, by points
        rate = None if plan is None else plan.rate
        quota = None if plan is None else plan.quota
        self.burst: Final = 0 if rate is None else rate.burst  # 0: no rate (a rate's burst is at least 1)
        self.limit: Final = 0 if quota is None else quota.limit  # 0: no quota (a quota's limit is at least 1)
        self.maximum: Final = 0 if budget is None else budget.maximum
        self.restore_rate: Final = 0.0 if budget is None else budget.restore_rate


@final
class _Refund(ReplyCallback):
    """A refund written on the lean connection (``refund_soon``): its reply goes to the store, no future.
    Settled once, whichever comes first (a failed write, the reply, the connection's end), so that it is
    counted once and ``drain`` waits for it once."""

    __slots__ = ("command", "settled", "store")

    def __init__(self, store: RedisCostBudgets, command: bytes) -> None:
        self.store: Final = store
        self.command: Final = command
        self.settled = False

    def replied(self, reply: object) -> None:
        if not self.settled:
            self.settled = True
            self.store._refund_answered(reply, self.command)

    def failed(self, exc: Exception) -> None:
        if not self.settled:
            self.settled = True
            self.store._refund_failed(exc)


class RedisCostBudgets(_RedisStore):
    """``CostBudgets`` on Redis: a GCRA per key (``rate=restore_rate``, ``burst=maximum``) in one script."""

    def _setup(self) -> None:
        self._rates: dict[int, tuple[CostBudget, str]] = {}
        self._in_flight: set[asyncio.Future[Any]] = set()  # refunds sent as tasks
        self._unanswered = 0  # refunds written on the lean connection (_Refund), not answered yet
        self._drained: asyncio.Future[None] | None = None  # drain() waits for _unanswered to reach 0

    def _rate(self, budget: CostBudget) -> str:
        # repr(restore_rate) per CostBudget object, as the limiter keeps its plans' arguments.
        cached = self._rates.get(id(budget))
        if cached is not None and cached[0] is budget:
            return cached[1]
        if len(self._rates) > 1024:
            self._rates.clear()
        text = repr(budget.restore_rate)
        self._rates[id(budget)] = (budget, text)
        return text

    async def charge(self, key: str, plan_name: str, budget: CostBudget, points: int) -> BudgetDecision:
        if points < 0:
            raise ValueError("points must not be negative")
        now = "" if self._clock is None else repr(self._clock())
        args = (now, self._rate(budget), budget.maximum, points, self._grace_ms)
        reply = await self._run(BUDGET_CHARGE, (self._key(plan_name, key) + ":b",), args)
        if reply is None:
            return self._degraded(budget, points)
        f = reply.split()
        tat = None if f[2] == b"-" else float(f[2])
        return budget_decision(f[0] == b"1", float(f[1]), tat, now=float(f[3]), budget=budget, points=points)

    def _degraded(self, budget: CostBudget, points: int) -> BudgetDecision:
        """The decision made without Redis, per ``failure_mode``."""
        allowed = self.failure_mode == "open"
        return BudgetDecision(
            allowed=allowed,
            requested=points,
            maximum=budget.maximum,
            available=float(budget.maximum) if allowed else 0.0,
            restore_rate=budget.restore_rate,
            retry_after=None if allowed else 1,
            degraded=True,
        )

    async def refund(self, key: str, plan_name: str, budget: CostBudget, points: int) -> None:
        if points < 0:
            raise ValueError("points must not be negative")
        args = (self._now(), self._rate(budget), points, self._grace_ms)
        await self._send(BUDGET_REFUND, (self._key(plan_name, key) + ":b",), args)

    def refund_soon(self, key: str, plan_name: str, budget: CostBudget, points: int) -> None:
        if points < 0:
            raise ValueError("points must not be negative")
        lean = self._lean
        conn = None if lean is None else lean.ready()
        if conn is None:  # redis-py, or no lean connection open yet: the awaited call, as a task
            keys = (self._key(plan_name, key) + ":b",)
            args = (self._now(), self._rate(budget), points, self._grace_ms)
            self._track(asyncio.ensure_future(self._send(BUDGET_REFUND, keys, args)))
            return
        command = self._refund_command(key, plan_name, budget, points)
        refund = _Refund(self, command)
        self._unanswered += 1
        try:
            conn.write(command, refund, conn.loop.time() + self._timeout)
        except Exception as exc:  # the connection closed under us: counted as the awaited call would be
            refund.failed(exc)

    def _refund_command(self, key: str, plan_name: str, budget: CostBudget, points: int) -> bytes:
        """``BUDGET_REFUND``'s EVALSHA on the lean client, as ``_admit_command`` makes ``ADMIT``'s."""
        commands = self._commands.get(plan_name)
        if commands is None or commands.budget is not budget:
            if len(self._commands) >= _CACHED_PLANS:
                self._commands.clear()
            commands = self._commands[plan_name] = _PlanCommands(None, budget, self._key(plan_name, ""))
        if self._clock is None:
            args = commands.refund_args.get(points)
            if args is None:
                args = encode_args(("", self._rate(budget), points, self._grace_ms))
                if len(commands.refund_args) >= _CACHED_ARGS:
                    commands.refund_args.clear()
                commands.refund_args[points] = args
        else:
            args = encode_args((repr(self._clock()), self._rate(budget), points, self._grace_ms))
        start = commands.key_start
        name = key.encode()
        return b"%s$%s\r\n%s%s}:b\r\n%s" % (_REFUND_HEAD, _size(name, len(start) + 3), start, name, args)

    def _refund_answered(self, reply: object, command: bytes) -> None:
        """A lean refund's reply (``_Refund``): counted as ``_send`` counts the awaited call."""
        if type(reply) is int:  # the script's 0 or 1
            if self.health.failing:
                self.health.succeeded()
        elif isinstance(reply, LeanNoScriptError):  # Redis lost the script: run_command loads it and retries
            self._track(asyncio.ensure_future(self._resend(command)))
        elif isinstance(reply, Exception):
            self.health.failed(reply, failure_mode=self.failure_mode)
        elif self.health.failing:
            self.health.succeeded()
        self._settled()

    def _refund_failed(self, exc: Exception) -> None:
        self.health.failed(exc, failure_mode=self.failure_mode)
        self._settled()

    def _settled(self) -> None:
        self._unanswered -= 1
        if not self._unanswered and self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    async def _resend(self, command: bytes) -> None:
        """``_send`` for a refund already encoded, on the lean client."""
        assert self._lean is not None
        try:
            await self._lean.run_command(BUDGET_REFUND, command, self._timeout)
        except Exception as exc:  # the limiter never raises to the request path
            self.health.failed(exc, failure_mode=self.failure_mode)
            return
        if self.health.failing:
            self.health.succeeded()

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def drain(self) -> None:
        """Wait for the refunds ``refund_soon`` has sent and Redis has not answered yet (each is bounded by
        the store's timeout): on shutdown, before the Redis client closes, so none is lost."""
        while self._in_flight or self._unanswered:
            if self._unanswered:  # written on the lean connection: _settled wakes this when the last is answered
                if self._drained is None:
                    self._drained = asyncio.get_running_loop().create_future()
                await asyncio.shield(self._drained)
            else:
                await asyncio.wait(list(self._in_flight))
