"""The WebSocket side of the double: Hasura's ``/v1/graphql`` subscriptions.

Both protocols as Hasura serves them (server/src-lib/Hasura/GraphQL/Transport/WebSocket.hs, WSServerApp.hs,
WebSocket/Server.hs, WebSocket/Protocol.hs); close reasons that Hasura writes as JSON
(``encodeServerErrorMsg``) are ``{"server_error_msg":"<code>: <message>"}``:

- Subprotocol: ``graphql-transport-ws`` only when it is the single offered value, otherwise the legacy
  ``graphql-ws`` (``createServerApp``). (Deviation: the chosen name is echoed only when the client offered
  it, because real WebSocket clients fail a handshake that echoes a name they did not offer.)
- A message that is not a client message (not JSON, an unknown ``type``, no ``id`` on an operation, a
  ``connection_init`` payload whose headers are not all strings): legacy ``connection_error``
  ``parsing ClientMessage failed: <aeson's error>`` and the socket stays; graphql-transport-ws close 4400
  ``4400: Parsing client message failed: parsing ClientMessage failed: <aeson's error>``. (The double's
  aeson errors are close imitations; and where Hasura sends a reason over RFC 6455's 123 bytes, the double
  shortens the message inside the JSON, ending it with ``...``.)
- Auth on ``connection_init``: ``payload.headers`` first, then the handshake headers, resolved like HTTP
  (admin-secret mode, ``auth.resolve_session``). Failure: legacy ``connection_error`` with the message, then
  close 4400 ``4400: Connection initialization failed: <message>``; graphql-transport-ws close 4403
  ``4403: Forbidden``. A second ``connection_init`` is authenticated again, as in Hasura.
- graphql-transport-ws only: no ``connection_init`` within ``init_timeout`` seconds (Hasura's default 3):
  close 4408 ``Connection initialisation timed out`` (plain text).
- ``connection_ack`` then one ``ka``/``ping``; keep-alives every ``keepalive`` seconds from the accept.
- Operations: queries/mutations answer one ``data``/``next`` then ``complete``; subscriptions answer the
  current result at once and, when ``tick_seconds`` is set, again every tick (the double's data never
  changes, so Hasura would stay silent: the tick stands for "the rows changed"). Errors before execution:
  ``error`` then ``complete``. An operation before the ack or with the id of a running subscription
  (``sendStartErr``): ``error`` with one ``start-failed`` error object; then legacy ``complete`` (the
  socket stays), graphql-transport-ws a second ``error`` whose payload is the message and close 1000
  ``4400: <message>``. ``connection_terminate`` closes 1000 on either protocol.

Controls (callable from any thread): ``close_all(code, reason)`` (e.g. 1012 metadata change, 1011),
``refuse = True`` (refuse new handshakes, as a Hasura that is down), ``hold_mutations = True`` (record a
mutation and never answer it: it stays in flight until the socket closes), ``mutation_delay`` (seconds
before a mutation is answered), ``connections`` (what each socket
sent: subprotocol, handshake headers, init payload, resolved session, operations), ``active()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from graphql import execute

from .auth import AuthConfig, resolve_session
from .errors import HasuraError, graphql_error_object
from .execution import select_operation

if TYPE_CHECKING:
    from .double import HasuraDouble

__all__ = ["WebSocketApp", "WebSocketDouble", "WsConnection", "reject_websocket"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WebSocketApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

PATHS = ("/v1/graphql", "/v1alpha1/graphql", "/v1beta1/relay")
MAX_REASON_BYTES = 123  # RFC 6455 §5.5
PARSE_FAILED = "parsing ClientMessage failed: "
CLIENT_MESSAGE_TYPES = frozenset(
    {"connection_init", "start", "subscribe", "stop", "complete", "ping", "pong", "connection_terminate"}
)
TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"
DROPPED_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "upgrade", "connection"})


async def reject_websocket(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Refuse the handshake: ``websocket.close`` before ``websocket.accept`` (HTTP 403)."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})


@dataclass
class WsConnection:
    """What one socket did, for assertions."""

    subprotocol: str
    handshake_headers: list[tuple[str, str]]
    init_payload: Any = None
    session: dict[str, str] | None = None
    operations: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class _Socket:
    def __init__(self, owner: WebSocketDouble, record: WsConnection, send: Send) -> None:
        self.owner = owner
        self.record = record
        self.legacy = record.subprotocol == LEGACY
        self._send = send
        self.lock = asyncio.Lock()
        self.closed = False
        self.initialised = False
        self.init_received = False
        self.ops: dict[str, asyncio.Task[None]] = {}

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        async with self.lock:
            with contextlib.suppress(Exception):
                await self._send({"type": "websocket.send", "text": orjson.dumps(message).decode()})

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        reason = reason.encode()[:MAX_REASON_BYTES].decode("utf-8", "ignore")
        async with self.lock:
            with contextlib.suppress(Exception):
                await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def close_with_error(self, code: int, message: str) -> None:
        """Close with Hasura's JSON reason (``encodeServerErrorMsg``), shortened inside the JSON to fit."""
        await self.close(code, server_error_reason(message))

    def keepalive_message(self) -> dict[str, Any]:
        return {"type": "ka"} if self.legacy else {"type": "ping", "payload": {"message": "keepalive"}}


def server_error_reason(message: str) -> str:
    reason = orjson.dumps({"server_error_msg": message}).decode()
    while len(reason.encode()) > MAX_REASON_BYTES:
        message = message[:-1]
        reason = orjson.dumps({"server_error_msg": message + "..."}).decode()
    return reason


def _client_message_error(message: Any) -> str | None:
    """Why Hasura's ``ClientMsg`` parser would refuse ``message`` (aeson's words, imitated), or None."""
    if not isinstance(message, dict):
        return "Error in $: parsing ClientMessage failed, expected Object"
    kind = message.get("type")
    if kind is None:
        return 'Error in $: key "type" not found'
    if not isinstance(kind, str):
        return "Error in $.type: expected String"
    if kind not in CLIENT_MESSAGE_TYPES:
        return f"Error in $: unexpected type for ClientMessage: {kind}"
    if kind in ("start", "subscribe", "stop", "complete") and not isinstance(message.get("id"), str):
        return 'Error in $: key "id" not found'
    if kind == "connection_init":
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            return "Error in $.payload: parsing ConnParams failed, expected Object"
        headers = (payload or {}).get("headers")
        if headers is not None and (
            not isinstance(headers, dict) or not all(isinstance(value, str) for value in headers.values())
        ):
            return "Error in $.payload.headers: expected an object of strings"
    return None


class WebSocketDouble:
    def __init__(self, double: HasuraDouble) -> None:
        self.double = double
        self.keepalive = 5.0
        self.init_timeout = 3.0
        self.tick_seconds: float | None = None
        self.refuse = False
        self.hold_mutations = False
        self.mutation_delay = 0.0
        self.connections: list[WsConnection] = []
        self._sockets: set[_Socket] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def reset(self) -> None:
        self.keepalive = 5.0
        self.init_timeout = 3.0
        self.tick_seconds = None
        self.refuse = False
        self.hold_mutations = False
        self.mutation_delay = 0.0
        with self._lock:
            self.connections.clear()

    def active(self) -> int:
        return sum(1 for s in list(self._sockets) if not s.closed)

    def close_all(self, code: int = 1012, reason: str = "Server state changed, restarting the server") -> None:
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            for sock in list(self._sockets):
                await sock.close(code, reason)

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> list[WsConnection]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                done = [c for c in self.connections if c.session is not None]
            if len(done) >= count:
                return done
            time.sleep(0.01)
        raise TimeoutError(f"expected {count} initialised connections, got {len(done)}")

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self._loop = asyncio.get_running_loop()
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if scope["path"] not in PATHS or self.refuse:
            await send({"type": "websocket.close", "code": 1008})
            return
        offered = list(scope.get("subprotocols") or [])
        chosen = TRANSPORT if offered == [TRANSPORT] else LEGACY
        await send({"type": "websocket.accept", **({"subprotocol": chosen} if chosen in offered else {})})
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        record = WsConnection(chosen, [(k, v) for k, v in headers if k not in DROPPED_HANDSHAKE])
        with self._lock:
            self.connections.append(record)
        sock = _Socket(self, record, send)
        self._sockets.add(sock)
        keepalive = asyncio.create_task(self._keepalive(sock))
        init_timer = asyncio.create_task(self._init_timeout(sock)) if chosen == TRANSPORT else None
        try:
            while not sock.closed:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                await self._on_message(sock, text)
        finally:
            sock.closed = True
            record.closed = True
            keepalive.cancel()
            if init_timer is not None:
                init_timer.cancel()
            for task in sock.ops.values():
                task.cancel()
            self._sockets.discard(sock)

    async def _keepalive(self, sock: _Socket) -> None:
        while True:
            await asyncio.sleep(self.keepalive)
            await sock.send(sock.keepalive_message())

    async def _init_timeout(self, sock: _Socket) -> None:
        await asyncio.sleep(self.init_timeout)
        if not sock.init_received:
            await sock.close(4408, "Connection initialisation timed out")

    async def _on_message(self, sock: _Socket, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._parse_failure(sock, "Error in $: Failed reading: not a valid json value")
            return
        refused = _client_message_error(message)
        if refused is not None:
            await self._parse_failure(sock, refused)
            return
        kind = message["type"]
        if kind == "connection_init":
            await self._init(sock, message.get("payload"))
        elif kind in ("start", "subscribe"):
            await self._start(sock, message["id"], message.get("payload"))
        elif kind in ("stop", "complete"):
            task = sock.ops.pop(message["id"], None)
            if task is not None:
                task.cancel()
        elif kind == "ping":
            pong: dict[str, Any] = {"type": "pong"}
            if "payload" in message:
                pong["payload"] = message["payload"]
            await sock.send(pong)
        elif kind == "pong":
            pass
        elif kind == "connection_terminate":
            await sock.close(1000, "GQL_CONNECTION_TERMINATE received")

    async def _parse_failure(self, sock: _Socket, detail: str) -> None:
        if sock.legacy:
            await sock.send({"type": "connection_error", "payload": PARSE_FAILED + detail})
        else:
            await sock.close_with_error(4400, f"4400: Parsing client message failed: {PARSE_FAILED}{detail}")

    async def _init(self, sock: _Socket, payload: Any) -> None:
        sock.record.init_payload = payload
        sock.init_received = True
        try:
            headers_in = (payload or {}).get("headers") or {}
            headers = [(str(k).lower(), v) for k, v in headers_in.items()] + sock.record.handshake_headers
            session = resolve_session(headers, AuthConfig(self.double.admin_secret, self.double.unauthorized_role))
        except HasuraError as error:
            if sock.legacy:
                await sock.send({"type": "connection_error", "payload": error.message})
                await sock.close_with_error(4400, f"4400: Connection initialization failed: {error.message}")
            else:
                await sock.close_with_error(4403, "4403: Forbidden")
            return
        sock.record.session = session
        sock.initialised = True
        await sock.send({"type": "connection_ack"})
        await sock.send(sock.keepalive_message())

    async def _start(self, sock: _Socket, op_id: str, payload: Any) -> None:
        data_type = "data" if sock.legacy else "next"
        if not sock.initialised:
            await self._start_failed(sock, op_id, "start received before the connection is initialised")
            return
        if op_id in sock.ops:
            await self._start_failed(sock, op_id, f"an operation already exists with this id: {op_id}")
            return
        sock.record.operations.append({"id": op_id, "payload": payload})
        try:
            if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
                raise HasuraError("parsing GQLReq failed", "parse-failed")
            parsed = self.double.executor._parsed(payload["query"])
            operation = select_operation(parsed.document, payload.get("operationName"))
            if parsed.errors:
                raise self.double.executor._error(parsed.errors[0], parsed)
        except HasuraError as error:
            await self._op_error(sock, op_id, error.message, error.code)
            return
        subscription = operation.operation.value == "subscription"
        if self.hold_mutations and operation.operation.value == "mutation":
            return  # recorded, never answered

        delay = self.mutation_delay if operation.operation.value == "mutation" else 0.0

        async def run() -> None:
            if delay:
                await asyncio.sleep(delay)
            while True:
                result = execute(
                    self.double.schema,
                    parsed.document,
                    variable_values=payload.get("variables"),
                    operation_name=payload.get("operationName"),
                    field_resolver=_resolver(),
                )
                body: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
                if result.errors:  # type: ignore[union-attr]
                    body["errors"] = [{"message": e.message} for e in result.errors]  # type: ignore[union-attr]
                await sock.send({"type": data_type, "id": op_id, "payload": body})
                if not subscription:
                    break
                tick = self.tick_seconds
                if tick is None:
                    await asyncio.Event().wait()  # rows never change: stay subscribed, silent
                else:
                    await asyncio.sleep(tick)
            sock.ops.pop(op_id, None)
            await sock.send({"type": "complete", "id": op_id})

        sock.ops[op_id] = asyncio.create_task(run())

    async def _start_failed(self, sock: _Socket, op_id: str, message: str) -> None:
        """Hasura's ``sendStartErr`` (WebSocket.hs) then ``mkConnectionCloseAction`` (WSServerApp.hs).

        Hasura sends the ``complete`` after closing a graphql-transport-ws socket, so it never arrives.
        """
        error = graphql_error_object(HasuraError(message, "start-failed"))
        await sock.send({"type": "error", "id": op_id, "payload": error})
        if sock.legacy:
            await sock.send({"type": "complete", "id": op_id})
            return
        await sock.send({"type": "error", "id": op_id, "payload": message})
        await sock.close_with_error(1000, f"4400: {message}")

    async def _op_error(self, sock: _Socket, op_id: str, message: str, code: str) -> None:
        error = graphql_error_object(HasuraError(message, code))
        if sock.legacy:
            await sock.send({"type": "error", "id": op_id, "payload": {"errors": [error]}})
        else:
            await sock.send({"type": "error", "id": op_id, "payload": [error]})
        await sock.send({"type": "complete", "id": op_id})


def _resolver() -> Any:
    from .data import resolve_field

    return resolve_field
