"""A route class that decodes JSON numbers with a fraction as Decimal, not float.

Hasura passes a ``numeric`` argument through as the client wrote it. Decoded as a float, ``148.0000000000000001``
would become ``148.0`` and slip past the currency-precision check; as a Decimal it keeps every digit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

__all__ = ["DecimalJSONRoute"]


class _DecimalJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal)
        return self._json


class DecimalJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decimal_handler(request: Request) -> Response:
            return await handler(_DecimalJSONRequest(request.scope, request.receive))

        return decimal_handler
