"""``GET /graphiql/assets/<name>``: the GraphiQL page's files (``edge.graphiql``), only with ``EDGE_GRAPHIQL``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.graphiql import ASSETS_PATH, GraphiQL

__all__ = ["graphiql_router"]


def graphiql_router(graphiql: GraphiQL) -> APIRouter:
    router = APIRouter()

    @router.get(ASSETS_PATH + "{name}", include_in_schema=False)
    async def asset(name: str, request: Request) -> Response:
        answer = graphiql.asset_response(
            name,
            request.query_params.get("v"),
            request.headers.get("if-none-match"),
            request.headers.get("accept-encoding"),
        )
        if answer is None:
            raise StarletteHTTPException(404)  # answered GraphQL-shaped, as every other unknown path
        status, headers, body = answer
        return Response(
            body,
            status_code=status,
            headers={name.decode("latin-1"): value.decode("latin-1") for name, value in headers},
        )

    return router
