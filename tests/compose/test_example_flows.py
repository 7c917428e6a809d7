"""Run each client script end to end against a scripted stand-in for the edge (HTTP, and graphql-transport-ws
for the subscription), answering with Hasura-shaped data: the scripts send what the flow needs (token,
operation, variables, idempotency key) and survive the answers, including the unhappy ones.

Like the compose edge, the stand-in serves https/wss with a certificate from ``edge.ws.devcert``; the scripts
trust its CA through ``--ca`` or ``EDGE_CA_FILE`` and refuse the server when they do not.

The stand-in answers by operation name with data shaped like Hasura's (numeric as JSON numbers, timestamps as
strings); whether the documents fit the real schema is test_examples.py's job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jose import jwt

from edge.ws.devcert import write_if_missing
from tests.compose import support
from tests.support.servers import serving

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
ORDER = "cccccccc-0000-4000-8000-000000000001"
DOCUMENT = "dddddddd-0000-4000-8000-000000000001"
KEY = "flows-test-hs256-key-0123456789abcdef0123"

Responder = Callable[[dict[str, Any]], dict[str, Any]]


class FakeEdge:
    """ASGI app: POST /graphql answered by ``responders[operationName]``; websocket handled by ``ws``."""

    def __init__(self, responders: dict[str, Responder] | None = None) -> None:
        self.responders = responders or {}
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.ws_messages: list[dict[str, Any]] = []
        self.ws_mode = "serve"  # or "refuse"
        self.lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        payload = json.loads(body)
        with self.lock:
            self.requests.append((headers, payload))
        answer = self.responders[payload["query"].split()[1].split("(")[0]](payload.get("variables") or {})
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"req-1")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        if self.ws_mode == "refuse" or "graphql-transport-ws" not in scope.get("subprotocols", []):
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept", "subprotocol": "graphql-transport-ws"})

        async def next_message() -> dict[str, Any]:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                raise ConnectionError
            message: dict[str, Any] = json.loads(event["text"])
            self.ws_messages.append(message)
            return message

        async def emit(message: dict[str, Any]) -> None:
            await send({"type": "websocket.send", "text": json.dumps(message)})

        try:
            assert (await next_message())["type"] == "connection_init"
            await emit({"type": "connection_ack"})
            await emit({"type": "ping", "payload": {"message": "keepalive"}})
            seen: set[str] = set()
            while not {"subscribe", "pong"} <= seen:
                seen.add((await next_message())["type"])
            rows = [inventory_row(3), inventory_row(6)]
            await emit({"type": "next", "id": "1", "payload": {"data": {"inventory": rows}}})
            await emit({"type": "next", "id": "1", "payload": {"data": {"inventory": rows[1:]}}})
            while (await next_message())["type"] != "complete":
                pass
            await send({"type": "websocket.close", "code": 1000})
        except ConnectionError:
            return


def inventory_row(quantity: int) -> dict[str, Any]:
    return {
        "quantity": quantity,
        "low_stock_threshold": 5,
        "updated_at": "2026-01-10T10:00:00+00:00",
        "product": {"sku": "KB-001", "name": "Mechanical Keyboard"},
        "warehouse": {"code": "WH-NYC"},
    }


@dataclass(frozen=True)
class TLSEdge:
    """Where the stand-in listens (https://127.0.0.1:<port>) and the CA that signed its certificate."""

    url: str
    ca: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    write_if_missing(directory, ["localhost", "127.0.0.1"])  # what the compose edge-certs service writes
    return directory


@pytest.fixture
def fake(certs: Path) -> Iterator[tuple[FakeEdge, TLSEdge]]:
    edge = FakeEdge()
    tls = {"ssl_certfile": str(certs / "edge.pem"), "ssl_keyfile": str(certs / "edge-key.pem")}
    with serving(edge, **tls) as server:
        yield edge, TLSEdge(f"https://127.0.0.1:{server.port}", certs / "ca.pem")


def run_script(
    name: str, server: TLSEdge | str, *args: str, trust: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run examples/<name>.py against ``server`` (or a base URL) with the test key in JWT_HS256_KEY, trusting
    the stand-in's CA with ``--ca`` unless ``trust`` is false."""
    base = server if isinstance(server, str) else server.url
    ca = ["--ca", str(server.ca)] if trust and isinstance(server, TLSEdge) else []
    clean = {k: v for k, v in os.environ.items() if k not in ("EDGE_JWT_SECRET", "EDGE_URL", "EDGE_CA_FILE")}
    clean["JWT_HS256_KEY"] = KEY
    return subprocess.run(
        [sys.executable, f"examples/{name}.py", "--url", f"{base}/graphql", *ca, *args],
        cwd=support.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        check=False,
    )


def bearer_subject(headers: dict[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization is None:
        return None
    scheme, token = authorization.split(" ", 1)
    assert scheme == "Bearer"
    claims = jwt.decode(token, KEY, algorithms=["HS256"])
    user_id: str = claims["https://hasura.io/jwt/claims"]["x-hasura-user-id"]
    return user_id


def products(with_threshold: bool) -> Responder:
    def answer(variables: dict[str, Any]) -> dict[str, Any]:
        stock = [{"quantity": 42, "warehouse": {"code": "WH-BER", "city": "Berlin"}}]
        stock.append({"quantity": 3, "warehouse": {"code": "WH-NYC", "city": None}})
        if with_threshold:
            for row in stock:
                row["low_stock_threshold"] = 5
        item = {"sku": "KB-001", "name": "Mechanical Keyboard", "price": 89.0, "currency": "USD", "inventory": stock}
        return {"data": {"products": [item] * min(variables["limit"], 2)}}

    return answer


def test_browse_products_anonymous_and_as_a_user(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    edge.responders = {"BrowseProducts": products(False), "BrowseProductsAsUser": products(True)}
    anonymous = run_script("browse_products", server, "--limit", "2")
    assert anonymous.returncode == 0, anonymous.stderr
    assert "Mechanical Keyboard" in anonymous.stdout and "stock 45" in anonymous.stdout
    headers, payload = edge.requests[-1]
    assert bearer_subject(headers) is None and payload["variables"] == {"limit": 2}
    assert headers["content-type"].startswith("application/json")
    as_alice = run_script("browse_products", server, "--user", "alice")
    assert as_alice.returncode == 0, as_alice.stderr
    assert "LOW (threshold 5)" in as_alice.stdout
    assert bearer_subject(edge.requests[-1][0]) == ALICE


def test_pay_order_pays_then_replays_with_the_same_key(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    payments: dict[str, dict[str, Any]] = {}

    def pay(variables: dict[str, Any]) -> dict[str, Any]:
        data = variables["input"]
        key = data["idempotencyKey"]
        replay = key in payments
        payments.setdefault(
            key,
            {
                "paymentId": "eeeeeeee-0000-4000-8000-000000000001",
                "orderId": data["orderId"],
                "status": "approved",
                "orderStatus": "paid",
                "amount": "148.00",
                "currency": data["currency"],
                "providerReference": "sim_123",
                "createdAt": "2026-11-21T20:00:00+00:00",
            },
        )
        return {"data": {"processPayment": {**payments[key], "idempotentReplay": replay}}}

    items = [{"quantity": 1, "unit_price": 89.0, "product": {"name": "Mechanical Keyboard"}}]
    edge.responders = {
        "AwaitingOrders": lambda _: {
            "data": {
                "orders": [
                    {"id": ORDER, "status": "awaiting_payment", "total": 148.0, "currency": "USD", "items": items}
                ]
            }
        },
        "Pay": pay,
        "OrderAfterPayment": lambda v: {"data": {"orders_by_pk": {"id": v["id"], "status": "paid", "payments": []}}},
    }
    result = run_script("pay_order", server, "--idempotency-key", "demo-key-1")
    assert result.returncode == 0, result.stderr
    calls = [payload for _, payload in edge.requests if payload["query"].split()[1].startswith("Pay")]
    assert len(calls) == 2 and calls[0]["variables"] == calls[1]["variables"]
    assert calls[0]["variables"]["input"] == {
        "orderId": ORDER,
        "amount": 148.0,
        "currency": "USD",
        "idempotencyKey": "demo-key-1",
    }
    assert "replay returned the same payment; idempotentReplay=True" in result.stdout
    assert {bearer_subject(headers) for headers, _ in edge.requests} == {ALICE}


def test_pay_order_with_nothing_to_pay(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    edge.responders = {"AwaitingOrders": lambda _: {"data": {"orders": []}}}
    result = run_script("pay_order", server)
    assert result.returncode == 0, result.stderr
    assert "nothing to pay" in result.stdout and "docker compose down -v" in result.stdout


def test_pay_order_reports_graphql_errors(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    error = {"message": "amount and currency must equal the order total", "extensions": {"code": "AMOUNT_MISMATCH"}}
    edge.responders = {
        "AwaitingOrders": lambda _: {
            "data": {
                "orders": [{"id": ORDER, "status": "awaiting_payment", "total": 1, "currency": "USD", "items": []}]
            }
        },
        "Pay": lambda _: {"errors": [error]},
    }
    result = run_script("pay_order", server)
    assert result.returncode == 1
    assert "AMOUNT_MISMATCH" in result.stderr and "req-1" in result.stderr


def test_edit_document_updates_then_waits_for_the_history_row(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    polls = {"count": 0}
    content = "Goals\n- Ship the edge gateway\n"

    def history(variables: dict[str, Any]) -> dict[str, Any]:
        polls["count"] += 1
        rows = [{"version": 1, "author_id": ALICE, "diff": "+Goals\n", "created_at": "2026-03-01T08:00:00"}]
        if polls["count"] >= 2:  # the event trigger "arrives" on the second poll
            rows.insert(0, {"version": 2, "author_id": BOB, "diff": "+- line\n", "created_at": "2026-11-21T20:00:00"})
        return {
            "data": {"documents_by_pk": {"id": variables["id"], "title": "Launch plan", "version": 2, "history": rows}}
        }

    edge.responders = {
        "ReadDocument": lambda v: {
            "data": {
                "documents_by_pk": {
                    "id": v["id"],
                    "title": "Launch plan",
                    "version": 1,
                    "content": content,
                    "owner_id": ALICE,
                    "updated_at": "2026-03-01T08:00:00+00:00",
                }
            }
        },
        "EditDocument": lambda v: {
            "data": {"update_documents_by_pk": {"id": v["id"], "title": "Launch plan", "version": 2, "updated_at": "x"}}
        },
        "DocumentHistory": history,
    }
    result = run_script("edit_document", server, "--line", "- line")
    assert result.returncode == 0, result.stderr
    edit = next(p for _, p in edge.requests if p["query"].split()[1].startswith("EditDocument"))
    assert edit["variables"] == {"id": DOCUMENT, "content": content + "- line\n"}
    assert "-- version 2 by " + BOB in result.stdout
    assert polls["count"] == 2
    assert {bearer_subject(headers) for headers, _ in edge.requests} == {BOB}


def test_edit_document_as_a_viewer_changes_nothing(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    document = {"id": DOCUMENT, "title": "t", "version": 1, "content": "c\n", "owner_id": ALICE, "updated_at": "x"}
    edge.responders = {
        "ReadDocument": lambda _: {"data": {"documents_by_pk": document}},
        "EditDocument": lambda _: {"data": {"update_documents_by_pk": None}},
    }
    result = run_script("edit_document", server, "--user", "carol")
    assert result.returncode == 1
    assert "may read but not edit" in result.stdout


def test_subscribe_inventory_speaks_graphql_transport_ws(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    result = run_script("subscribe_inventory", server, "--updates", "2", "--seconds", "20", "--max-quantity", "7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("low-stock rows") == 2 and "received 2 update(s)" in result.stdout
    kinds = [message["type"] for message in edge.ws_messages]
    assert kinds[0] == "connection_init" and "pong" in kinds and kinds[-1] == "complete"
    init = edge.ws_messages[0]
    assert bearer_subject({k.lower(): v for k, v in init["payload"]["headers"].items()}) == ALICE
    subscribe = next(message for message in edge.ws_messages if message["type"] == "subscribe")
    assert subscribe["id"] == "1" and subscribe["payload"]["variables"] == {"max": 7}
    assert subscribe["payload"]["query"].lstrip().startswith("subscription LowStock")


def test_subscribe_inventory_explains_a_refused_upgrade(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    edge.ws_mode = "refuse"  # an upgrade refused before it is accepted (HTTP 403)
    result = run_script("subscribe_inventory", server, "--seconds", "5")
    assert result.returncode == 2
    assert "the edge refused the WebSocket upgrade (HTTP 403)" in result.stderr


def test_scripts_trust_the_ca_from_edge_ca_file(fake: tuple[FakeEdge, TLSEdge]) -> None:
    edge, server = fake
    edge.responders = {"BrowseProducts": products(False)}
    result = run_script("browse_products", server, trust=False, env={"EDGE_CA_FILE": str(server.ca)})
    assert result.returncode == 0, result.stderr
    assert "Mechanical Keyboard" in result.stdout


def test_scripts_refuse_an_edge_whose_ca_they_do_not_trust(fake: tuple[FakeEdge, TLSEdge], tmp_path: Path) -> None:
    edge, server = fake
    edge.responders = {"BrowseProducts": products(False), "AwaitingOrders": lambda _: {"data": {"orders": []}}}
    other = tmp_path / "other"
    write_if_missing(other, ["localhost", "127.0.0.1"])  # a CA, just not the stand-in's
    for name in ("browse_products", "pay_order", "subscribe_inventory"):
        result = run_script(name, server, "--ca", str(other / "ca.pem"), trust=False)
        assert result.returncode == 1, (name, result.stderr)
        assert "certificate is not trusted" in result.stderr and ".dev-certs/ca.pem" in result.stderr, name
    assert not edge.requests and not edge.ws_messages


def test_a_missing_ca_file_is_reported(fake: tuple[FakeEdge, TLSEdge], tmp_path: Path) -> None:
    _, server = fake
    result = run_script("browse_products", server, "--ca", str(tmp_path / "absent.pem"), trust=False)
    assert result.returncode == 1
    assert "absent.pem is not a file" in result.stderr


def test_scripts_default_to_https_and_wss_on_localhost() -> None:
    for name, scheme in (("browse_products", "https"), ("subscribe_inventory", "wss")):
        result = subprocess.run(
            [sys.executable, f"examples/{name}.py", "--help"],
            cwd=support.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != "EDGE_URL"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"{scheme}://localhost:8000/graphql" in " ".join(result.stdout.split()), name


def test_scripts_explain_an_unreachable_edge() -> None:
    for name in ("browse_products", "pay_order", "edit_document"):
        result = run_script(name, "http://127.0.0.1:9")  # the discard port: nothing listens
        assert result.returncode == 1
        assert "is `docker compose up` running?" in result.stderr
