"""A route class that reads the JSON body with ``actions.json_body.parse_json_body``.

FastAPI's own decoding reads fractions as floats and turns invalid UTF-8 or runaway nesting into a
``{"detail": ...}`` 400 outside Hasura's action error format. This route parses the body first, so such a
body is refused as a ServiceError (INVALID_JSON, JSON_TOO_DEEP) and the handler receives Decimal numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from actions.json_body import parse_json_body

__all__ = ["StrictJSONRoute"]

_UNPARSED = object()


class _StrictJSONRequest(Request):
    parsed_json: Any = _UNPARSED

    async def json(self) -> Any:
        if self.parsed_json is _UNPARSED:
            self.parsed_json = parse_json_body(await self.body())
        return self.parsed_json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            strict = _StrictJSONRequest(request.scope, request.receive)
            if await strict.body():
                # Parsed here, outside FastAPI's body handling, so a refusal reaches the ServiceError handler.
                await strict.json()
            return await handler(strict)

        return strict_json_handler
