"""Fixtures for subscriptions through the edge: a test CA, wss edges, and small protocol clients."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from edge.ws.devcert import make_certificate
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import mint

TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"


@dataclass
class TLSFiles:
    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    directory = tmp_path_factory.mktemp("tls")
    made = make_certificate(["localhost", "127.0.0.1"])
    files = TLSFiles(directory / "ca.pem", directory / "edge.pem", directory / "edge-key.pem")
    files.ca.write_bytes(made.ca_pem)
    files.cert.write_bytes(made.cert_pem)
    files.key.write_bytes(made.key_pem)
    return files


@dataclass
class WssEdge:
    server: RunningServer
    tls: TLSFiles

    @property
    def url(self) -> str:
        return self.url_at("/graphql")

    def url_at(self, path: str) -> str:
        """The ``wss://`` URL of ``path`` on this edge (``/v1/graphql``, Hasura's path, is served too)."""
        return f"wss://localhost:{self.server.port}{path}"

    @property
    def https_url(self) -> str:
        return f"https://localhost:{self.server.port}"

    def ssl(self) -> ssl.SSLContext:
        return self.tls.client_context()


WssEdgeFactory = Callable[..., WssEdge]


@pytest.fixture
def start_wss_edge(start_edge: EdgeFactory, tls_files: TLSFiles) -> WssEdgeFactory:
    def start(**overrides: Any) -> WssEdge:
        overrides.setdefault("tls_cert_file", tls_files.cert)
        overrides.setdefault("tls_key_file", tls_files.key)
        overrides.setdefault("ws_keepalive_seconds", 5.0)
        return WssEdge(start_edge(**overrides), tls_files)

    return start


@pytest.fixture
def wss_edge(start_wss_edge: WssEdgeFactory) -> WssEdge:
    return start_wss_edge()


@pytest.fixture
def double(hasura: HasuraDouble) -> Iterator[HasuraDouble]:
    yield hasura


def bearer(**claims: Any) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {mint(**claims)}"}}


class Client:
    """A bare protocol client: send dicts, receive dicts (keep-alives skipped unless asked)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def receive(self, *, timeout: float = 5.0, keepalives: bool = False) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if keepalives or message.get("type") not in ("ka", "ping"):
                return dict(message)

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait for the close; (code, reason). Messages before it are discarded."""
        try:
            async with asyncio.timeout(timeout):
                async for _ in self.ws:
                    pass
        except Exception:
            pass
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
        return await self.receive()

    async def subscribe(self, op_id: str, query: str, **extra: Any) -> None:
        kind = "subscribe" if self.subprotocol == TRANSPORT else "start"
        await self.send({"type": kind, "id": op_id, "payload": {"query": query, **extra}})

    async def close(self) -> None:
        await self.ws.close()


def open_client(edge: WssEdge, subprotocol: str | None = TRANSPORT, *, path: str = "/graphql", **options: Any) -> Any:
    """``async with open_client(edge, "graphql-ws") as client:`` (``path="/v1/graphql"``: Hasura's path)."""
    subprotocols = [subprotocol] if subprotocol else None
    return _ClientContext(edge, subprotocols, options, path)


class _ClientContext:
    def __init__(
        self, edge: WssEdge, subprotocols: list[str] | None, options: dict[str, Any], path: str = "/graphql"
    ) -> None:
        self.edge = edge
        self.path = path
        self.subprotocols = subprotocols
        self.options = options
        self.ws: ClientConnection | None = None

    async def __aenter__(self) -> Client:
        self.ws = await connect(
            self.edge.url_at(self.path),
            ssl=self.edge.ssl(),
            subprotocols=self.subprotocols,  # type: ignore[arg-type]
            open_timeout=5,
            ping_interval=None,
            **self.options,
        )
        return Client(self.ws)

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
