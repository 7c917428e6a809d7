"""One structured JSON line per GraphQL operation, cheap enough for every request.

Each line is ``logger.info("graphql_operation", extra=fields)`` on the ``edge.access`` logger, rendered by
``edge.logs.JsonFormatter``. The fields are exactly::

    request_id, batch_index, operation_type, operation_name, operation_hash, role, plan, key_id, user_id,
    cost_estimated, request_cost_estimated, cost_actual, status, error_code, duration_ms, upstream_ms

``batch_index`` is None for a single operation; a batch of n operations gives n lines sharing ``request_id``.
``operation_hash`` is the first 16 hex digits of sha256 of the query text (the same query gives the same hash
on every replica, so dashboards can group by it); hashes are cached per query string. ``cost_estimated`` is the
operation's own estimate when known (a single operation: ``ctx.estimated_cost``; a batch: only when the caller
passes ``estimated_costs``), and ``request_cost_estimated`` is the whole request's, so summing
``cost_estimated`` never counts a batch twice. ``status``, ``duration_ms`` and ``upstream_ms`` are the HTTP
request's (a batch is one HTTP exchange).

A WebSocket operation (``record_websocket``) gives one line with the same fields plus three of its own::

    transport ("websocket"), operation_id, outcome

``request_id`` is then the connection's and ``operation_id`` the client's id for the operation; ``batch_index``,
``cost_actual`` and ``upstream_ms`` are None, ``request_cost_estimated`` is the operation's estimate, and
``status``/``outcome`` say how it ended (``edge.ws.observation``). HTTP lines carry no ``transport`` field: each
key a line carries is work on every HTTP request.

Never logged: variables, the query text, headers, tokens, API keys (only ``key_id``), the admin secret. Only
the fields above are read from the context. ``user_id`` (``x-hasura-user-id``) is an identifier, not a
credential, and it is what usage is billed and abuse is traced by, so it is logged; pass
``include_user_id=False`` where user ids are personal data (an e-mail address) that must stay out of logs.

Cost: with INFO disabled for the logger, ``record`` returns after one cached ``isEnabledFor``. With
``sample_rate < 1`` successful operations are sampled; errors (status >= 400 or an error code) always log.
When the edge's own JSON handler alone would write the line, unchanged (``edge.logs.json_line_handler``:
what ``configure_logging`` sets up, with nothing added through ``logging``), the line is written by that
handler directly, without a ``LogRecord`` and the handler chain's calls: the same text at about a quarter of
the cost (``docs/benchmarks.md``, "Production configuration"). Anything configured through ``logging`` (a
handler, a filter, ``propagate``, pytest's ``caplog``) makes ``record`` log the usual way instead.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any, Final

from edge.context import RequestContext
from edge.logs import json_line_handler, logger_chain
from edge.observability.ws_operation import EndedOperation
from edge.session import Identity

__all__ = ["EVENT", "AccessLog", "operation_hash"]

EVENT: Final = "graphql_operation"
WEBSOCKET: Final = "websocket"
_MAX_NAME: Final = 128
_HASH_CACHE_SIZE: Final = 4096
_hashes: Final[dict[str, str]] = {}


def operation_hash(query: str) -> str:
    """First 16 hex digits of sha256(query), cached (about 1 µs to compute, 50 ns to look up)."""
    cached = _hashes.get(query)
    if cached is None:
        cached = hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        if len(_hashes) >= _HASH_CACHE_SIZE:
            _hashes.clear()
        _hashes[query] = cached
    return cached


class AccessLog:
    """Writes the access-log lines of a request; construct once, call ``record`` after each response."""

    def __init__(
        self,
        logger_name: str = "edge.access",
        sample_rate: float = 1.0,
        *,
        include_user_id: bool = True,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        self.logger = logging.getLogger(logger_name)
        self.chain = logger_chain(logger_name)
        self.sample_rate = sample_rate
        self.include_user_id = include_user_id
        self._random = random_source

    def record(
        self,
        ctx: RequestContext,
        *,
        status: int,
        duration: float,
        upstream_duration: float | None,
        error_code: str | None,
        estimated_costs: Sequence[int] | None = None,
        actual_costs: Sequence[int] | None = None,
    ) -> None:
        """Log one line per operation of ``ctx`` (durations in seconds; costs per operation, when known)."""
        if not self.logger.isEnabledFor(logging.INFO) or self._sampled_out(status, error_code):
            return
        role, key_id, user_id = self._who(ctx.identity)
        payload = ctx.payload
        if ctx.is_batch and isinstance(payload, list):
            operations: list[Any] = payload
        else:
            operations = [payload]
        analyses = ctx.analyses
        batch = ctx.is_batch
        base: dict[str, Any] = {
            "request_id": ctx.request_id,
            "role": role,
            "plan": ctx.plan_name or None,
            "key_id": key_id,
            "user_id": user_id,
            "request_cost_estimated": ctx.estimated_cost,
            "status": status,
            "error_code": error_code,
            "duration_ms": round(duration * 1000.0, 3),
            "upstream_ms": None if upstream_duration is None else round(upstream_duration * 1000.0, 3),
        }
        for index, operation in enumerate(operations):
            fields = base.copy() if batch else base
            analysis = analyses[index] if index < len(analyses) else None
            query = name = None
            if isinstance(operation, dict):
                query = operation.get("query")
                name = operation.get("operationName")
            if analysis is not None:
                fields["operation_type"] = analysis.operation_type
                name = analysis.operation_name
            else:
                fields["operation_type"] = None
            fields["operation_name"] = name[:_MAX_NAME] if isinstance(name, str) else None
            fields["operation_hash"] = operation_hash(query) if isinstance(query, str) else None
            fields["batch_index"] = index if batch else None
            if estimated_costs is not None:
                fields["cost_estimated"] = estimated_costs[index] if index < len(estimated_costs) else None
            else:
                fields["cost_estimated"] = None if batch else ctx.estimated_cost
            fields["cost_actual"] = (
                actual_costs[index] if actual_costs is not None and index < len(actual_costs) else None
            )
            self._write(fields)

    def _sampled_out(self, status: int, error_code: str | None) -> bool:
        """A successful line left out by ``sample_rate`` (errors are always logged)."""
        return self.sample_rate < 1.0 and status < 400 and error_code is None and self._random() >= self.sample_rate

    def _who(self, identity: Identity | None) -> tuple[str | None, str | None, str | None]:
        """``role``, ``key_id`` and ``user_id`` (unless ``include_user_id`` is off) of a line."""
        if identity is None:
            return None, None, None
        session = identity.session
        key = identity.api_key
        return session.role, key.key_id if key is not None else None, session.user_id if self.include_user_id else None

    def _write(self, fields: dict[str, Any]) -> None:
        """One line, after the level check: straight through the edge's JSON handler when nothing else is
        configured, else through ``logging`` (every configured handler and filter then sees the record)."""
        handler = json_line_handler(self.chain)
        if handler is not None:
            handler.write_line(self.logger.name, EVENT, fields)
        else:
            self.logger.info(EVENT, extra=fields)

    def record_websocket(self, ended: EndedOperation) -> None:
        """Log the line of one WebSocket operation once it has ended."""
        if not self.logger.isEnabledFor(logging.INFO) or self._sampled_out(ended.status, ended.error_code):
            return
        role, key_id, user_id = self._who(ended.identity)
        name = ended.operation_name
        fields: dict[str, Any] = {
            "request_id": ended.request_id,
            "batch_index": None,
            "operation_type": ended.operation_type,
            "operation_name": name[:_MAX_NAME] if name is not None else None,
            "operation_hash": operation_hash(ended.query) if ended.query is not None else None,
            "role": role,
            "plan": ended.plan or None,
            "key_id": key_id,
            "user_id": user_id,
            "cost_estimated": ended.cost_estimated,
            "request_cost_estimated": ended.cost_estimated,
            "cost_actual": None,
            "status": ended.status,
            "error_code": ended.error_code,
            "duration_ms": round(ended.duration * 1000.0, 3),
            "upstream_ms": None,
            "transport": WEBSOCKET,
            "operation_id": ended.operation_id[:_MAX_NAME],
            "outcome": ended.outcome,
        }
        self._write(fields)
