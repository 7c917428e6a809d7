"""The two GraphQL-over-WebSocket protocols Hasura speaks, written down once.

``graphql-transport-ws`` is the graphql-ws library protocol; ``graphql-ws`` is the legacy Apollo
subscriptions-transport-ws protocol (Hasura's vocabulary of both: ``ClientMsg``/``ServerMsg`` in
server/src-lib/Hasura/GraphQL/Transport/WebSocket/Protocol.hs). The edge talks to Hasura in the
protocol the client chose, so messages are relayed with their vocabulary unchanged; only control
messages are the edge's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "GRAPHQL_TRANSPORT_WS",
    "GRAPHQL_WS",
    "LEGACY",
    "SUBPROTOCOLS",
    "TRANSPORT",
    "CloseCode",
    "Protocol",
    "choose_subprotocol",
    "server_error_reason",
]

GRAPHQL_TRANSPORT_WS = "graphql-transport-ws"
GRAPHQL_WS = "graphql-ws"
SUBPROTOCOLS = (GRAPHQL_TRANSPORT_WS, GRAPHQL_WS)


class CloseCode:
    """Close codes the edge sends to clients (``docs/subscriptions.md`` has the table)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # graceful shutdown: reconnect elsewhere
    POLICY = 1008  # message rate over the cap
    TOO_BIG = 1009  # message over EDGE_WS_MAX_MESSAGE_BYTES (sent by the server protocol)
    INTERNAL = 1011  # Hasura failed in a way a reconnect will not fix
    RESTART = 1012  # Hasura restarted or changed state; reconnect
    TRY_AGAIN = 1013  # Hasura unreachable, or the client reads too slowly
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401  # an operation before connection_ack
    FORBIDDEN = 4403  # credentials refused, expired or revoked
    SUBPROTOCOL = 4406
    INIT_TIMEOUT = 4408
    DUPLICATE_ID = 4409
    TOO_MANY = 4429  # connection rate limit


@dataclass(frozen=True, slots=True)
class Protocol:
    """One protocol's message vocabulary, per direction (``c2s``: client to server)."""

    name: str
    subscribe: str  # c2s: start an operation
    stop: str  # c2s: stop an operation
    data: str  # s2c: a result
    error: str  # s2c: an operation failed before execution
    complete: str  # s2c: an operation is over
    keepalive: bytes  # s2c: the keep-alive message, pre-encoded

    @property
    def legacy(self) -> bool:
        return self.name == GRAPHQL_WS

    def operation_error(self, op_id: str, message: str, code: str) -> list[bytes]:
        """The messages that end one operation with an edge error (the connection lives on)."""
        error = {"message": message, "extensions": {"code": code}}
        # Hasura's shapes (``fmtErrorMessage`` in server/src-lib/Hasura/GraphQL/Transport/WSServerApp.hs).
        if self.legacy:  # payload.errors, then complete
            return [
                orjson.dumps({"type": "error", "id": op_id, "payload": {"errors": [error]}}),
                orjson.dumps({"type": "complete", "id": op_id}),
            ]
        # graphql-transport-ws: error is terminal, no complete follows.
        return [orjson.dumps({"type": "error", "id": op_id, "payload": [error]})]


TRANSPORT = Protocol(
    name=GRAPHQL_TRANSPORT_WS,
    subscribe="subscribe",
    stop="complete",
    data="next",
    error="error",
    complete="complete",
    keepalive=b'{"type":"ping","payload":{"message":"keepalive"}}',
)
LEGACY = Protocol(
    name=GRAPHQL_WS,
    subscribe="start",
    stop="stop",
    data="data",
    error="error",
    complete="complete",
    keepalive=b'{"type":"ka"}',
)

# c2s types either protocol accepts (Hasura parses both vocabularies on either subprotocol).
CONNECTION_INIT = "connection_init"
REFRESH = "refresh"  # the edge's own: new credentials in-band
PING = "ping"
PONG = "pong"
TERMINATE = "connection_terminate"  # legacy only
SUBSCRIBE_TYPES = frozenset({"subscribe", "start"})
STOP_TYPES = frozenset({"complete", "stop"})

CONNECTION_ACK = b'{"type":"connection_ack"}'
REFRESH_ACK = b'{"type":"refresh_ack"}'

#: A close frame's reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5: 125 with the code).
MAX_REASON_BYTES = 123


def server_error_reason(message: str) -> str:
    """A close reason as Hasura writes it: ``{"server_error_msg":"4400: ..."}``.

    Hasura's ``encodeServerErrorMsg`` (server/src-lib/Hasura/GraphQL/Transport/WebSocket/Protocol.hs)
    sends the whole message, which can exceed what a close frame may carry (clients then fail the
    connection); here the message is shortened, ending in ``...``, so that the JSON fits.
    """
    message = message.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate cannot be sent
    reason = orjson.dumps({"server_error_msg": message})
    if len(reason) <= MAX_REASON_BYTES:
        return reason.decode("utf-8")
    fits, too_long = 0, len(message)  # characters of the message kept before "..."
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if len(orjson.dumps({"server_error_msg": message[:middle] + "..."})) <= MAX_REASON_BYTES:
            fits = middle
        else:
            too_long = middle
    return orjson.dumps({"server_error_msg": message[:fits] + "..."}).decode("utf-8")


def choose_subprotocol(offered: list[str]) -> tuple[Protocol | None, str | None]:
    """(protocol, subprotocol to echo) for the client's ``Sec-WebSocket-Protocol`` offer.

    - ``graphql-transport-ws`` when offered (preferred when both are);
    - else ``graphql-ws``;
    - nothing offered: legacy, as Hasura does, with no subprotocol echoed (RFC 6455 §4.2.2);
    - only unknown names: (None, None), and the connection is closed with 4406.
    """
    if GRAPHQL_TRANSPORT_WS in offered:
        return TRANSPORT, GRAPHQL_TRANSPORT_WS
    if GRAPHQL_WS in offered:
        return LEGACY, GRAPHQL_WS
    if not offered:
        return LEGACY, None
    return None, None


def dumps(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)
