"""One client socket relayed to Hasura: the state machine and its pumps.

Tasks per connection: the client reader (this module's ``_read_client``), the client writer
(``_write_client``, draining a bounded outbox), the upstream reader (``_read_upstream``) and a
ticker (keep-alives, API key re-checks, subscription lease refreshes). Timers close the socket
when ``connection_init`` is late and when the credentials expire.

States: accepted -> initialised (``connection_ack`` sent) -> closing. Every ``subscribe``/``start``
(and query or mutation) is checked by the plan like an HTTP request; a refused operation gets an
error for its id and the connection lives. ``docs/subscriptions.md`` is the reference.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from edge import strict_json
from edge.asgi import Receive, Send
from edge.errors import (
    AuthenticationError,
    BadRequest,
    EdgeError,
    InvalidJSON,
    LimiterUnavailable,
    RoleNotAllowed,
    TooManyRequests,
)
from edge.graphql.policy import Violation
from edge.plans import Plan, RateLimit, with_introspection
from edge.session import Identity
from edge.ws import protocols as p
from edge.ws.credentials import BadInitPayload, credential_headers
from edge.ws.observation import OperationRecord, record_operation
from edge.ws.protocols import CloseCode, Protocol
from edge.ws.services import Services, WebSocketConfig
from edge.ws.upstream import UpstreamConnection, UpstreamRefused, UpstreamUnavailable

__all__ = ["Bridge"]

log = logging.getLogger("edge.ws")
_CLOSE_FLUSH_SECONDS = 5.0
_MAX_ID_LENGTH = 256
_CLOSING_MESSAGE = "The connection closed before the result arrived; the result is unknown"
_CLOSING_CODE = "connection-closed"
_ids = itertools.count(1)


@dataclass(slots=True)
class _Operation:
    raw: bytes
    subscription: bool
    counted: bool
    started: float = 0.0
    """``time.monotonic()`` when the operation started (subscription-seconds metering)."""
    record: OperationRecord | None = None
    """For metrics and the access log when it ends (``edge.ws.observation``); None once recorded."""


def _reason(text: str) -> str:
    """A close reason fits a control frame: at most 123 bytes of UTF-8 (RFC 6455 §5.5)."""
    return text.encode("utf-8")[:123].decode("utf-8", "ignore")


class _Refused(Exception):
    """An operation refused by the edge: its id gets an error, the connection lives.

    ``status`` is what an HTTP request refused alike gets (metrics and the access log).
    """

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Bridge:
    def __init__(
        self,
        protocol: Protocol,
        receive: Receive,
        send: Send,
        *,
        handshake: list[tuple[bytes, bytes]],
        client_address: str,
        request_id: str,
        services: Services,
        config: WebSocketConfig,
    ) -> None:
        self.protocol = protocol
        self._receive = receive
        self._send = send
        self.handshake = handshake
        self.client_address = client_address
        self.request_id = request_id
        self.services = services
        self.config = config
        self.connection_id = f"{request_id}:{next(_ids)}"
        self.identity: Identity | None = None
        self.credentials: list[tuple[bytes, bytes]] = []
        self.plan_name = ""
        self.plan: Plan | None = None
        self.limit_key = ""
        self.upstream: UpstreamConnection | None = None
        self.operations: dict[str, _Operation] = {}
        self.outbox: collections.deque[str | tuple[int, str]] = collections.deque()
        self._outbox_ready = asyncio.Event()
        self._finished = asyncio.Event()
        self._closing = False
        self._draining = ""  # the close reason once a graceful shutdown began
        self.close_code: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._upstream_task: asyncio.Task[None] | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tokens = float(config.message_burst)
        self._tokens_at = time.monotonic()
        self._reinit_lock = asyncio.Lock()

    # --- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Hasura's reason (createServerApp in server/src-lib/Hasura/GraphQL/Transport/WebSocket/Server.hs)
        self._timers["init"] = loop.call_later(
            self.config.init_timeout, self.close, CloseCode.INIT_TIMEOUT, "Connection initialisation timed out"
        )
        self._tasks = [
            asyncio.create_task(self._read_client()),
            asyncio.create_task(self._write_client()),
            asyncio.create_task(self._tick()),
        ]
        self.services.registry.add(self)
        try:
            await self._finished.wait()
        finally:
            self.services.registry.discard(self)
            for timer in self._timers.values():
                timer.cancel()
            tasks = [*self._tasks, *([self._upstream_task] if self._upstream_task else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.upstream is not None:
                await self.upstream.close()
            await self._release_all()

    def close(self, code: int, reason: str = "") -> None:
        """Close the client socket (after what is already queued); idempotent.

        A query or mutation still in flight ends first with an error for its id: graphql-ws clients
        re-send every operation still open when they reconnect after most closes (4403 and 1001
        included), and Hasura may have run it already.
        """
        if self._closing:
            return
        self._end_in_flight(
            "The connection closed before the result arrived; the result is unknown", "connection-closed"
        )
        self._closing = True
        self.close_code = code
        self.outbox.append((code, _reason(reason)))
        self._outbox_ready.set()
        self._timers["flush"] = asyncio.get_running_loop().call_later(_CLOSE_FLUSH_SECONDS, self._finished.set)

    def _abort(self, code: int, reason: str) -> None:
        """Close now, without waiting for the writer (it may be blocked on a client that does not read).

        The queued messages are dropped; the close frame is written past the transport's flow control
        by ``edge.http_server.websocket`` (a few bytes), behind what the kernel already holds.
        """
        if self._closing:
            return
        self._closing = True
        self.close_code = code
        self.outbox.clear()
        if len(self._tasks) > 1:
            self._tasks[1].cancel()  # the writer

        async def send_close() -> None:
            with contextlib.suppress(Exception):
                await self._send({"type": "websocket.close", "code": code, "reason": _reason(reason)})
            self._finished.set()

        self._tasks.append(asyncio.get_running_loop().create_task(send_close()))
        self._timers["flush"] = asyncio.get_running_loop().call_later(_CLOSE_FLUSH_SECONDS, self._finished.set)

    def drain(self, reason: str) -> None:
        """Graceful shutdown: forward no new operation (the client sends it again after it reconnects),
        let the queries and mutations in flight finish, then close with 1001."""
        self._draining = reason
        self._close_if_drained()

    def _close_if_drained(self) -> None:
        if self._draining and not any(not operation.subscription for operation in self.operations.values()):
            self.close(CloseCode.GOING_AWAY, self._draining)

    def _gone(self) -> None:
        """The client went away: nothing more can be sent."""
        self._closing = True
        self._finished.set()

    def enqueue(self, message: str | bytes) -> None:
        """Queue one text message for the client (upstream frames are passed as received, never re-encoded)."""
        if self._closing:
            return
        if isinstance(message, bytes):
            message = message.decode("utf-8")
        if len(self.outbox) >= self.config.send_queue_messages:
            # The client is not reading: drop what it has not read and close (bounded memory).
            self._abort(CloseCode.TRY_AGAIN, "Client too slow: send queue full")
            return
        self.outbox.append(message)
        self._outbox_ready.set()

    # --- pumps ---------------------------------------------------------------------------------

    async def _write_client(self) -> None:
        send = self._send
        outbox = self.outbox
        try:
            while True:
                if not outbox:
                    self._outbox_ready.clear()
                    await self._outbox_ready.wait()
                    continue
                item = outbox.popleft()
                if isinstance(item, tuple):
                    await send({"type": "websocket.close", "code": item[0], "reason": item[1]})
                    self._finished.set()
                    return
                await send({"type": "websocket.send", "text": item})
        except Exception:  # the server's ClientDisconnected, or the transport went away
            self._gone()

    async def _read_client(self) -> None:
        try:
            while not self._closing:
                message = await self._receive()
                kind = message["type"]
                if kind == "websocket.disconnect":
                    self._gone()
                    return
                if kind != "websocket.receive":
                    continue
                if not self._take_token():
                    raise _Close(CloseCode.POLICY, "Message rate limit exceeded")
                text = message.get("text")
                if text is None:  # Hasura reads a binary frame as it reads a text one (WS.receiveData)
                    try:
                        text = (message.get("bytes") or b"").decode("utf-8")
                    except UnicodeDecodeError:
                        self._protocol_error("Error in $: Failed reading: the message is not valid UTF-8")
                        continue
                await self._on_client_message(text)
        except _Close as close:
            self.close(close.code, close.reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ws_client_handler_failed", extra={"request_id": self.request_id})
            self.close(CloseCode.INTERNAL, "Internal error")

    def _take_token(self) -> bool:
        now = time.monotonic()
        rate = self.config.messages_per_second
        self._tokens = min(float(self.config.message_burst), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def _tick(self) -> None:
        interval = self.config.keepalive
        lease = self.services.counter.lease / 3
        recheck = self.config.recheck_seconds
        loop = asyncio.get_running_loop()
        next_lease = loop.time() + lease
        next_recheck = loop.time() + recheck
        step = min(interval, lease, recheck)
        next_keepalive = loop.time() + interval
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            if self.upstream is None:
                continue
            if now >= next_keepalive:
                next_keepalive = now + interval
                self.enqueue(self.protocol.keepalive)
            if now >= next_lease:
                next_lease = now + lease
                counted = [self._member(op_id) for op_id, op in self.operations.items() if op.counted]
                if counted:
                    await self.services.counter.refresh(self.limit_key, counted)
            if now >= next_recheck:
                next_recheck = now + recheck
                await self.recheck()

    # --- client messages -----------------------------------------------------------------------

    async def _on_client_message(self, text: str) -> None:
        # Subscribe and stop frames are relayed to Hasura as the client wrote them, so a frame that JSON
        # parsers could read differently (two "type"s or "payload"s: aeson keeps the first, orjson the
        # last) is refused like an unparsable one (edge/strict_json.py).
        try:
            message = strict_json.loads(text, "Message")
        except InvalidJSON as refused:
            self._protocol_error(refused.message)
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind in p.SUBSCRIBE_TYPES:
            await self._on_subscribe(message, text)
        elif kind in p.STOP_TYPES:
            await self._on_stop(message, text)
        elif kind == p.PING:
            if not self.protocol.legacy:
                payload = message.get("payload")
                self.enqueue(p.dumps({"type": "pong", **({"payload": payload} if payload is not None else {})}))
        elif kind == p.PONG:
            pass
        elif kind == p.CONNECTION_INIT:
            if self.upstream is not None or "init" not in self._timers:
                raise _Close(CloseCode.TOO_MANY, "Too many initialisation requests")
            await self._on_init(message.get("payload"))
        elif kind == p.REFRESH:
            if self.upstream is None:
                raise _Close(CloseCode.UNAUTHORIZED, "Unauthorized")
            await self._on_refresh(message.get("payload"))
        elif kind == p.TERMINATE:  # Hasura reads it on either protocol
            raise _Close(CloseCode.NORMAL, "GQL_CONNECTION_TERMINATE received")
        elif isinstance(kind, str):  # aeson's words, as Hasura's ClientMsg parser fails
            self._protocol_error(f"Error in $: unexpected type for ClientMessage: {kind[:40]}")
        elif not isinstance(message, dict):
            self._protocol_error("Error in $: parsing ClientMessage failed, expected Object")
        elif kind is None:
            self._protocol_error('Error in $: key "type" not found')
        else:
            self._protocol_error("Error in $.type: expected String")

    def _protocol_error(self, message: str) -> None:
        """graphql-transport-ws closes with 4400; the legacy protocol answers connection_error and stays open.

        As Hasura does for a message it cannot parse: ``onMessage`` in
        server/src-lib/Hasura/GraphQL/Transport/WebSocket.hs, answered by ``mkOnErrorMessageAction`` in
        server/src-lib/Hasura/GraphQL/Transport/WSServerApp.hs (``SMConnErr`` on Apollo's protocol,
        ``GenericError4400`` on graphql-transport-ws).
        """
        failure = f"parsing ClientMessage failed: {message}"
        if self.protocol.legacy:
            self.enqueue(p.dumps({"type": "connection_error", "payload": failure}))
            return
        # mkWSServerErrorCode in server/src-lib/Hasura/GraphQL/Transport/WebSocket/Server.hs adds its own prefix.
        raise _Close(CloseCode.BAD_REQUEST, p.server_error_reason(f"4400: Parsing client message failed: {failure}"))

    async def _on_init(self, payload: Any) -> None:
        try:
            credential_headers(payload, self.handshake)
        except BadInitPayload as exc:
            # Hasura cannot parse such a connection_init (its ConnParams wants string header values):
            # a parse failure, which leaves a legacy socket open for another connection_init.
            self._protocol_error(f"Error in $.payload: {exc}")
            return
        timer = self._timers.pop("init", None)
        if timer is not None:
            timer.cancel()
        try:
            identity, headers = await self._identify(payload)
            plan_name, plan, limit_key = self.services.identify_plan.resolve(identity, self.client_address)
            await self._admit(limit_key, plan_name, plan)
        except EdgeError as exc:
            code = CloseCode.TOO_MANY if exc.status == 429 else CloseCode.FORBIDDEN
            if exc.status >= 500:
                code = CloseCode.TRY_AGAIN
            self._refuse_init(exc.message, code)
            return
        self.identity, self.credentials = identity, headers
        self.plan_name, self.plan, self.limit_key = plan_name, plan, limit_key
        try:
            self.upstream = await self.services.connector.connect(self.protocol, self._upstream_payload())
        except UpstreamUnavailable:
            raise _Close(CloseCode.TRY_AGAIN, "The GraphQL engine is unavailable") from None
        except UpstreamRefused:
            log.error("ws_upstream_refused_init", extra={"request_id": self.request_id})
            raise _Close(CloseCode.INTERNAL, "The GraphQL engine refused the edge") from None
        self._upstream_task = asyncio.create_task(self._read_upstream(self.upstream))
        self._schedule_expiry()
        self.enqueue(p.CONNECTION_ACK)
        if self.protocol.legacy:
            self.enqueue(self.protocol.keepalive)  # as Hasura: one ka right after the ack

    async def _identify(self, payload: Any) -> tuple[Identity, list[tuple[bytes, bytes]]]:
        headers = credential_headers(payload, self.handshake)
        identity = await self.services.authenticate.identify(headers)
        if identity.expires_at is not None and identity.expires_at + self.config.expiry_grace <= time.time():
            raise AuthenticationError("The credentials have expired")
        return identity, headers

    async def _admit(self, limit_key: str, plan_name: str, plan: Plan) -> None:
        """The connection rate per limit key, on the shared limiter: the plan's own
        ``ws_connection_rate`` (a ``RateLimit``) when plans carry one, else ``EDGE_WS_CONNECTIONS_PER_SECOND``."""
        rate = getattr(plan, "ws_connection_rate", None)
        if isinstance(rate, RateLimit):
            # One Plan object per plan and rate: the limiters cache per Plan object.
            cached = self.services.connection_plans.get(plan_name)
            if cached is None or cached.rate != rate:
                cached = self.services.connection_plans[plan_name] = Plan(rate=rate)
            bucket, connection_plan = f"ws-connections:{plan_name}", cached
        elif self.services.connection_plan is not None:
            bucket, connection_plan = "ws-connections", self.services.connection_plan
        else:
            return
        decision = await self.services.limiter.hit(limit_key, bucket, connection_plan)
        if not decision.allowed:
            if decision.code == "limiter-unavailable":
                raise LimiterUnavailable()
            raise _Close(CloseCode.TOO_MANY, "Too many connections; retry later")

    def _refuse_init(self, message: str, code: int) -> None:
        """Refused credentials (``code`` 4403) as Hasura refuses them; the edge's own refusals keep their code.

        Hasura (``mkOnErrorMessageAction`` in server/src-lib/Hasura/GraphQL/Transport/WSServerApp.hs,
        ``mkWSServerErrorCode`` in .../WebSocket/Server.hs): on graphql-ws a ``connection_error`` with the
        message, then 4400 ``{"server_error_msg":"4400: Connection initialization failed: <message>"}``; on
        graphql-transport-ws 4403 ``{"server_error_msg":"4403: Forbidden"}``.
        """
        if self.protocol.legacy:
            self.enqueue(p.dumps({"type": "connection_error", "payload": message}))
        if code != CloseCode.FORBIDDEN:
            raise _Close(code, message)
        if self.protocol.legacy:
            reason = p.server_error_reason(f"4400: Connection initialization failed: {message}")
            raise _Close(CloseCode.BAD_REQUEST, reason)
        raise _Close(CloseCode.FORBIDDEN, p.server_error_reason("4403: Forbidden"))

    def _upstream_payload(self) -> dict[str, Any]:
        """Exactly the edge-made identity: nothing the client wrote reaches Hasura."""
        assert self.identity is not None
        session = self.identity.session
        headers = {
            "x-hasura-admin-secret": self.services.admin_secret,
            "x-hasura-role": session.role,
            **session.variables,
            "x-request-id": self.request_id,
        }
        return {"headers": headers}

    def _schedule_expiry(self) -> None:
        old = self._timers.pop("expiry", None)
        if old is not None:
            old.cancel()
        assert self.identity is not None
        expires_at = self.identity.expires_at
        if expires_at is None:
            return
        delay = max(0.0, expires_at + self.config.expiry_grace - time.time())
        self._timers["expiry"] = asyncio.get_running_loop().call_later(
            delay, self.end_credentials, "Credentials expired"
        )

    def end_credentials(self, reason: str) -> None:
        """The credentials expired or were revoked: close with 4403 (``connection_error`` first on legacy)."""
        self._end_in_flight(_CLOSING_MESSAGE, _CLOSING_CODE)  # before the connection_error: see close()
        if self.protocol.legacy:
            self.enqueue(p.dumps({"type": "connection_error", "payload": reason}))
        self.close(CloseCode.FORBIDDEN, reason)

    async def recheck(self) -> None:
        """API keys are looked up again (revocation elsewhere lands within the key cache TTL)."""
        if self.identity is None or self.identity.api_key is None:
            return
        try:
            await self.services.authenticate.identify(self.credentials)
        except AuthenticationError as exc:
            self.end_credentials(exc.message)
        except EdgeError:
            pass  # the key store is unavailable: keep the connection, try again next time

    async def _on_refresh(self, payload: Any) -> None:
        assert self.identity is not None
        try:
            identity, headers = await self._identify(payload)
            plan_name, plan, limit_key = self.services.identify_plan.resolve(identity, self.client_address)
            if limit_key != self.limit_key or identity.session.role != self.identity.session.role:
                raise RoleNotAllowed("Refreshed credentials must be for the same principal and role")
        except (BadInitPayload, EdgeError) as exc:
            message = exc.message if isinstance(exc, EdgeError) else str(exc)
            code = exc.code if isinstance(exc, EdgeError) else "bad-request"
            self.enqueue(
                p.dumps({"type": "refresh_error", "payload": {"message": message, "extensions": {"code": code}}})
            )
            return
        previous = self.identity
        self.identity = identity
        if identity.session != previous.session:
            try:
                await self._reinit_upstream()
            except (UpstreamUnavailable, UpstreamRefused):
                self.identity = previous  # the old connection and credentials carry on
                error = {"message": "The GraphQL engine is unavailable", "extensions": {"code": "upstream-unavailable"}}
                self.enqueue(p.dumps({"type": "refresh_error", "payload": error}))
                return
        self.credentials = headers
        self.plan_name, self.plan = plan_name, plan
        self._schedule_expiry()
        self.enqueue(p.REFRESH_ACK)

    # --- operations ----------------------------------------------------------------------------

    def _member(self, op_id: str) -> str:
        return f"{self.connection_id}:{op_id}"

    async def _on_subscribe(self, message: dict[str, Any], text: str) -> None:
        if self.upstream is None or self.plan is None or self.identity is None:
            raise _Close(CloseCode.UNAUTHORIZED, "Unauthorized")
        op_id = message.get("id")
        payload = message.get("payload")
        if not isinstance(op_id, str) or not op_id or len(op_id) > _MAX_ID_LENGTH:
            self._protocol_error("An operation needs a string id")
            return
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            self._protocol_error("An operation needs payload.query")
            return
        if op_id in self.operations:
            raise _Close(CloseCode.DUPLICATE_ID, f"Subscriber for {op_id[:60]} already exists")
        if self._draining:
            return  # never reaches Hasura: the client sends it again on its next connection
        name = payload.get("operationName")
        record = OperationRecord(op_id, payload["query"], time.perf_counter(), name if isinstance(name, str) else None)
        try:
            operation = await self._admit_operation(op_id, payload, record)
        except _Refused as refused:
            for out in self.protocol.operation_error(op_id, refused.message, refused.code):
                self.enqueue(out)
            self._observe(record, "refused", refused.code, refused.status)
            return
        operation.raw = text.encode("utf-8")
        operation.record = record
        self.operations[op_id] = operation
        await self.upstream.send(text)

    def _warn_only(self, op_id: str, violations: list[Violation]) -> None:
        """Limits the plan lists in ``warn_only`` that the operation exceeds: logged and counted, as over HTTP."""
        count = self.services.on_warn_only
        for violation in violations:
            if count is not None:
                count(violation.limit, self.plan_name)
            log.warning(
                "limit_warn_only",
                extra={
                    "request_id": self.request_id,
                    "operation_id": op_id,
                    "code": violation.code,
                    "limit": violation.limit,
                    "plan": self.plan_name,
                },
            )

    async def _admit_operation(self, op_id: str, payload: dict[str, Any], record: OperationRecord) -> _Operation:
        plan, services = self.plan, self.services
        assert plan is not None and self.identity is not None
        name = payload.get("operationName")
        variables = payload.get("variables")
        if name is not None and not isinstance(name, str):
            raise _Refused("operationName must be a string", "bad-request", BadRequest.status)
        if variables is not None and not isinstance(variables, dict):
            raise _Refused("variables must be an object", "bad-request", BadRequest.status)
        limits = plan.graphql
        if self.identity.session.role in services.introspection_roles:
            limits = with_introspection(limits)
        try:
            analysis = services.analyser(payload["query"], name, max_tokens=limits.max_tokens)
            cost = services.costs.model.estimate(analysis, variables=variables, role=self.identity.session.role)
            record.analysed(analysis, cost)
            violations = services.check(analysis, cost, limits)
            rejection = services.first_rejection(violations)
            if rejection is not None:
                raise rejection
            if violations:
                self._warn_only(op_id, violations)
            subscription = analysis.operation_type == "subscription"
            if subscription and plan.max_subscriptions is not None:
                active = sum(1 for op in self.operations.values() if op.subscription)
                if active >= plan.max_subscriptions:
                    raise _Refused(
                        f"At most {plan.max_subscriptions} concurrent subscriptions per connection on your plan",
                        "subscription-limit-exceeded",
                        TooManyRequests.status,
                    )
            if plan.rate is not None or plan.quota is not None or plan.cost_budget is not None:
                # One store call (one round trip on Redis), as the HTTP limit stage.
                admission = await services.limiter.admit(
                    self.limit_key, self.plan_name, plan, operations=1, points=cost, budgets=services.budgets
                )
                decision = admission.limit
                if not decision.allowed:
                    code = decision.code or "rate-limited"
                    status = LimiterUnavailable.status if code == LimiterUnavailable.code else TooManyRequests.status
                    raise _Refused("Rate limit or quota exceeded", code, status)
                charged = admission.budget
                if charged is not None and not charged.allowed:
                    raise _Refused(
                        f"This operation costs {cost} points; budget exhausted",
                        "cost-budget-exceeded",
                        TooManyRequests.status,
                    )
        except EdgeError as exc:
            raise _Refused(exc.message, exc.code, exc.status) from None
        counted = False
        if subscription and plan.max_subscriptions is not None:
            if not await services.counter.acquire(self.limit_key, self._member(op_id), plan.max_subscriptions):
                raise _Refused(
                    f"At most {plan.max_subscriptions} concurrent subscriptions per key or user on your plan",
                    "subscription-limit-exceeded",
                    TooManyRequests.status,
                )
            counted = True
        return _Operation(b"", subscription, counted, time.monotonic())

    async def _on_stop(self, message: dict[str, Any], text: str) -> None:
        op_id = message.get("id")
        if not isinstance(op_id, str):
            self._protocol_error("stop/complete needs an id")
            return
        operation = self.operations.pop(op_id, None)
        if operation is None:
            return  # unknown or finished: ignored, as Hasura does
        self._observe_end(operation, "stopped")
        await self._release(op_id, operation)
        if self.upstream is not None:
            await self.upstream.send(text)
        self._close_if_drained()

    def active_subscriptions(self) -> int:
        return sum(1 for operation in self.operations.values() if operation.subscription)

    async def _release(self, op_id: str, operation: _Operation) -> None:
        if operation.subscription and operation.started:
            await self._meter(time.monotonic() - operation.started)
            operation.started = 0.0  # metered once
        if operation.counted:
            operation.counted = False
            await self.services.counter.release(self.limit_key, self._member(op_id))

    async def _meter(self, seconds: float) -> None:
        meter, identity = self.services.meter, self.identity
        if meter is None or identity is None:
            return
        with contextlib.suppress(Exception):  # metering never breaks a socket
            if identity.api_key is not None:
                meter.record("key", identity.api_key.key_id, subscription_seconds=seconds)
            if identity.session.user_id:
                meter.record("user", identity.session.user_id, subscription_seconds=seconds)

    async def _release_all(self) -> None:
        operations, self.operations = self.operations, {}
        for op_id, operation in operations.items():
            self._observe_end(operation, "closed")
            with contextlib.suppress(Exception):
                await self._release(op_id, operation)

    def _observe(
        self, record: OperationRecord, outcome: str, code: str | None = None, status: int | None = None
    ) -> None:
        observer = self.services.observer
        if observer is not None:
            record_operation(
                observer,
                record,
                outcome,
                request_id=self.request_id,
                identity=self.identity,
                plan=self.plan_name,
                code=code,
                status=status,
            )

    def _observe_end(self, operation: _Operation, outcome: str, code: str | None = None) -> None:
        """Record an operation that left ``self.operations`` (once: its record goes with it)."""
        record, operation.record = operation.record, None
        if record is not None:
            self._observe(record, "error" if outcome == "completed" and record.error else outcome, code)

    # --- upstream ------------------------------------------------------------------------------

    def _end_in_flight(self, message: str, code: str) -> None:
        """End every query and mutation in flight with an error for its id; subscriptions stay."""
        for op_id, operation in list(self.operations.items()):
            if not operation.subscription:
                del self.operations[op_id]
                for out in self.protocol.operation_error(op_id, message, code):
                    self.enqueue(out)
                self._observe_end(operation, "aborted", code)

    async def _read_upstream(self, upstream: UpstreamConnection) -> None:
        protocol = self.protocol
        while True:
            text = await upstream.receive()
            if text is None:
                break
            try:
                message = orjson.loads(text)
                kind = message.get("type")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if kind == protocol.data:
                if message.get("id") in self.operations:
                    self.enqueue(text)
            elif kind == protocol.complete or kind == protocol.error:
                op_id = message.get("id")
                operation = self.operations.get(op_id) if isinstance(op_id, str) else None
                if operation is None or op_id is None:
                    continue
                self.enqueue(text)
                if kind == protocol.error and operation.record is not None:
                    operation.record.error = True
                if kind == protocol.complete or not protocol.legacy:
                    del self.operations[op_id]
                    self._observe_end(operation, "completed")
                    await self._release(op_id, operation)
                    self._close_if_drained()
            elif kind == p.PING:
                await upstream.send('{"type":"pong"}')
            elif kind == "connection_error":
                self.enqueue(text)
        if upstream is self.upstream and not self._closing:
            await self._upstream_lost(upstream.close_code)

    async def _upstream_lost(self, code: int | None) -> None:
        log.warning("ws_upstream_lost", extra={"request_id": self.request_id, "code": code})
        # A query or mutation in flight would have had its answer on the socket that is gone. It is
        # never sent again (Hasura may have run it): it ends now with an error for its id, before any
        # reconnect and before any close. The error matters: graphql-ws clients re-send every operation
        # still open when they reconnect after a close such as 1012 or 1013 (enisdenjo/graphql-ws,
        # src/client.ts, ``subscribe``), while an operation that got its error is over for them.
        self._end_in_flight(
            "The connection to the GraphQL engine was lost; the result is unknown", "upstream-unavailable"
        )
        for attempt in range(self.config.upstream_reconnect_attempts):
            await asyncio.sleep(self.config.upstream_reconnect_delay * (attempt + 1))
            try:
                await self._reinit_upstream()
                return
            except UpstreamUnavailable:
                continue
            except UpstreamRefused:
                break
        if code in (CloseCode.RESTART, CloseCode.GOING_AWAY):
            self.close(CloseCode.RESTART, "The GraphQL engine restarted; reconnect")
        elif code is None or code == 1006 or code == CloseCode.TRY_AGAIN:
            self.close(CloseCode.TRY_AGAIN, "The GraphQL engine is unavailable; try again later")
        else:
            self.close(CloseCode.INTERNAL, "The GraphQL engine closed the connection")

    async def _reinit_upstream(self) -> None:
        """A fresh upstream connection with the current identity; active subscriptions follow it
        with their ids (only subscriptions are ever sent again). Queries and mutations in flight on
        the old one get an error."""
        async with self._reinit_lock:
            fresh = await self.services.connector.connect(self.protocol, self._upstream_payload())
            old, old_task = self.upstream, self._upstream_task
            self.upstream = fresh
            self._upstream_task = asyncio.create_task(self._read_upstream(fresh))
            # No await since the switch: every query or mutation in flight went to the old connection.
            self._end_in_flight(
                "The connection to the GraphQL engine was renewed; the result was lost", "upstream-renewed"
            )
            for op_id, operation in list(self.operations.items()):
                # (a subscription stopped while an earlier one was being sent is not sent)
                if operation.subscription and self.operations.get(op_id) is operation:
                    await fresh.send(operation.raw)
            if old_task is not None and old_task is not asyncio.current_task():
                old_task.cancel()
            if old is not None:
                asyncio.get_running_loop().create_task(old.close())
