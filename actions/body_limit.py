"""``BodySizeLimit``: refuse a request body over ``ACTIONS_MAX_BODY_BYTES`` with 413 PAYLOAD_TOO_LARGE.

A pure ASGI stage in front of FastAPI. It reads the whole body before the app runs, counting the bytes as
they arrive and stopping at the first byte over the limit, so a chunked body or one whose
``Content-Length`` understates it is caught the same way; a ``Content-Length`` over the limit is refused
before anything is read. The app then gets the body in one piece (FastAPI reads it whole anyway).

The 413 is in Hasura's action error format and, being a 4xx, is relayed by Hasura to the client of an
action; for an event, Hasura retries it and then marks the event errored: raise the limit and redeliver it.
It carries ``Connection: close``, since unread request bytes may remain on the connection.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actions.error_responses import send_error
from actions.errors import PayloadTooLarge

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            return await self._refuse(send)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nobody is left to answer
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _ReplayBody(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send) -> None:
        error = PayloadTooLarge(f"request body is larger than {self.max_bytes} bytes", maxBytes=self.max_bytes)
        await send_error(send, error, headers={"Connection": "close"})


class _ReplayBody:
    """``receive`` for the app: the buffered body as one message, then the server's own ``receive``
    (which reports the disconnect)."""

    def __init__(self, body: bytes, receive: Receive) -> None:
        self.body: bytes | None = body
        self.receive = receive

    async def __call__(self) -> Message:
        if self.body is None:
            return await self.receive()
        body, self.body = self.body, None
        return {"type": "http.request", "body": body, "more_body": False}


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:  # the server refuses those; if one gets here, only the count decides
                return None
    return None
