"""Watch low stock live: a GraphQL subscription on `inventory` through the edge's WebSocket endpoint.

    python examples/subscribe_inventory.py                    # alice, rows with quantity <= 10
    python examples/subscribe_inventory.py --max-quantity 5 --updates 3 --seconds 60
    python examples/subscribe_inventory.py --url wss://edge.example.com/graphql --ca ./my-ca.pem

Default endpoint wss://localhost:8000/graphql (--url also takes the http(s):// GraphQL URL), trusting the
stack's .dev-certs/ca.pem besides the system's CAs; --ca or EDGE_CA_FILE names another CA file.

Needs the stack from `docker compose up --build`. When the edge refuses the upgrade (an Origin it does not
allow, a path it does not serve), the script prints the edge's answer and exits 2.

Protocol: graphql-ws (subprotocol `graphql-transport-ws`), the way Hasura speaks it: the token goes in
`connection_init.payload.headers.Authorization`; the server sends `next` with the full result every
time it changes (Hasura refetches live queries about once a second); `ping` is answered with `pong`.
To see an update, change a stock level in another terminal, e.g.
    docker compose exec postgres psql -U postgres hasura_edge -c \
      "UPDATE inventory SET quantity = quantity - 1 WHERE quantity > 0 AND quantity <= 10"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _client import CA_HINT, DEFAULT_URL, add_common_arguments, auth_headers, tls_context
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

SUBPROTOCOL = Subprotocol("graphql-transport-ws")

SUBSCRIPTION = """
subscription LowStock($max: Int!) {
  inventory(where: {quantity: {_lte: $max}}, order_by: [{quantity: asc}, {product_id: asc}]) {
    quantity
    low_stock_threshold
    updated_at
    product { sku name }
    warehouse { code }
  }
}
"""


def websocket_url(http_url: str) -> str:
    """http(s)://host/graphql -> ws(s)://host/graphql."""
    parts = urlsplit(http_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


async def receive(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    """Next protocol message; answers pings on the way."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message.get("type") == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        if message.get("type") == "pong":
            continue
        return dict(message)


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"\n{time.strftime('%H:%M:%S')}  {len(rows)} low-stock rows")
    for row in rows:
        product = row["product"]
        print(
            f"  {row['warehouse']['code']:<8} {product['sku']:<8} {product['name']:<30} "
            f"qty {row['quantity']:>4}  threshold {row['low_stock_threshold']}"
        )


async def watch(
    url: str, headers: dict[str, str], max_quantity: int, updates: int, seconds: float, *, ca_file: str | None = None
) -> int:
    deadline = time.monotonic() + seconds
    tls = tls_context(ca_file) if urlsplit(url).scheme == "wss" else None
    async with connect(url, subprotocols=[SUBPROTOCOL], open_timeout=10, ssl=tls) as ws:
        if ws.subprotocol != SUBPROTOCOL:
            print(f"server chose subprotocol {ws.subprotocol!r}, expected {SUBPROTOCOL!r}", file=sys.stderr)
            return 1
        await ws.send(json.dumps({"type": "connection_init", "payload": {"headers": headers}}))
        ack = await receive(ws, 10)
        if ack.get("type") != "connection_ack":
            print(f"expected connection_ack, got {ack}", file=sys.stderr)
            return 1
        await ws.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {"max": max_quantity}}}
            )
        )
        seen = 0
        while seen < updates:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                message = await receive(ws, remaining)
            except TimeoutError:
                break
            kind = message.get("type")
            if kind == "next":
                payload = message.get("payload") or {}
                if payload.get("errors"):
                    print(f"errors: {json.dumps(payload['errors'])}", file=sys.stderr)
                    return 1
                print_rows(payload["data"]["inventory"])
                seen += 1
            elif kind == "error":
                print(f"subscription refused: {json.dumps(message.get('payload'))}", file=sys.stderr)
                return 1
            elif kind == "complete":
                break
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
    print(f"\nreceived {seen} update(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Subscribe to low-stock inventory rows through the edge.")
    add_common_arguments(parser, default_user="alice", default_url=websocket_url(DEFAULT_URL))
    parser.add_argument("--max-quantity", type=int, default=10, help="show rows with quantity <= this (default: 10)")
    parser.add_argument("--updates", type=int, default=5, help="stop after this many results (default: 5)")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop after this many seconds (default: 120)")
    args = parser.parse_args(argv)
    url = websocket_url(args.url)
    try:
        return asyncio.run(
            watch(url, auth_headers(args.user), args.max_quantity, args.updates, args.seconds, ca_file=args.ca)
        )
    except InvalidStatus as error:
        answer = error.response.body.decode("utf-8", "replace")[:300] if error.response.body else ""
        print(f"the edge refused the WebSocket upgrade (HTTP {error.response.status_code}) {answer}", file=sys.stderr)
        return 2
    except ssl.SSLCertVerificationError as error:
        print(f"the edge's certificate is not trusted ({error}): {CA_HINT}", file=sys.stderr)
        return 1
    except (InvalidHandshake, ConnectionClosed, OSError, TimeoutError) as error:
        print(f"WebSocket failed ({type(error).__name__}: {error}); is `docker compose up` running?", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
