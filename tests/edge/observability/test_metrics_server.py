"""MetricsServer: /metrics on its own port inside the caller's event loop."""

from __future__ import annotations

import socket

import httpx
import pytest

from edge.observability import EdgeMetrics, metrics_asgi_app
from edge.observability.metrics_server import MetricsServer


async def test_metrics_are_served_on_their_own_port_and_stop_cleanly() -> None:
    metrics = EdgeMetrics()
    metrics.rejected("rate-limited")
    server = MetricsServer(metrics_asgi_app(metrics, token="tok"), port=0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            assert (await client.get("/metrics")).status_code == 401
            response = await client.get("/metrics", headers={"authorization": "Bearer tok"})
            assert response.status_code == 200
            assert 'edge_rejections_total{code="rate-limited",transport="http"} 1.0' in response.text
    finally:
        await server.aclose()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


async def test_a_taken_port_fails_the_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = MetricsServer(metrics_asgi_app(EdgeMetrics(), token=None), port=taken.getsockname()[1])
        with pytest.raises(OSError):
            await server.start()
        await server.aclose()
