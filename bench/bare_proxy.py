"""The Python floor for comparison: raw ASGI under uvicorn (httptools) + the lean client, no features.

Started by bench/http_path.py as its "bare proxy" row: the same server and client the edge
uses, minus every pipeline stage, so the difference is what the edge's features cost.

    python bench/bare_proxy.py <port> <upstream base url>
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.upstream.lean import LeanUpstream


def build(upstream_url: str) -> Any:
    upstream = LeanUpstream(upstream_url)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await upstream.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        message = await receive()
        response = await upstream.post(message.get("body", b""), [])
        await send({"type": "http.response.start", "status": response.status, "headers": response.headers})
        await send({"type": "http.response.body", "body": response.body})

    return app


if __name__ == "__main__":
    port, upstream_url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(
        build(upstream_url),
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
    )
