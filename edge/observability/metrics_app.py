"""``GET /metrics``: the exposition of an :class:`~edge.observability.metrics.EdgeMetrics`, as a tiny ASGI app.

Apart from the metrics themselves because servers recognise an ASGI app by inspecting a Python
coroutine function, and ``metrics.py`` is compiled with mypyc (setup.py).
"""

from __future__ import annotations

import hmac

from edge.asgi import ASGIApp, Receive, Scope, Send, send_response
from edge.observability.metrics import EdgeMetrics
from edge.observability.metrics_peers import MetricsPeers

__all__ = ["metrics_asgi_app"]


def metrics_asgi_app(metrics: EdgeMetrics, *, token: str | None, peers: MetricsPeers | None = None) -> ASGIApp:
    """A tiny ASGI app answering ``GET /metrics``; anything else is 404/405.

    With ``peers`` (``EDGE_WORKERS`` above 1), the answer is the sum of every worker's metrics.

    With ``token``, the request must carry ``Authorization: Bearer <token>`` (compared in constant time),
    else 401. It answers the lifespan protocol, so any ASGI server can run it on a port of its own.
    """
    expected = None if token is None else b"bearer " + token.encode("utf-8")
    text = (b"content-type", b"text/plain; charset=utf-8")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics":
            await send_response(send, 404, [text], b"not found\n")
            return
        if scope["method"] != "GET":
            await send_response(send, 405, [text, (b"allow", b"GET")], b"method not allowed\n")
            return
        if expected is not None and not _authorized(scope["headers"], expected):
            await send_response(send, 401, [text, (b"www-authenticate", b"Bearer")], b"unauthorized\n")
            return
        body, content_type = metrics.render()
        if peers is not None:
            body = await peers.sum_with(body)
        await send_response(send, 200, [(b"content-type", content_type.encode("ascii"))], body)

    return app


def _authorized(headers: list[tuple[bytes, bytes]], expected: bytes) -> bool:
    for name, value in headers:
        if name == b"authorization":
            # The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
            scheme, _, credentials = value.partition(b" ")
            return hmac.compare_digest(scheme.lower() + b" " + credentials, expected)
    return False
