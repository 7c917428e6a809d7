"""Hasura's schema for type-aware cost: introspected at start, refreshed periodically and on demand.

A refresh whose answer is the one the current schema was built from (its digest) builds nothing, which is
almost every periodic refresh; a new answer is read and built in a worker thread, with the collector paused,
so the requests the event loop serves meanwhile wait at most for the JSON parse (``bench/schema_refresh.py``:
for 500 tables, 72 to 86 ms where building on the loop held it 1.2 to 2.8 s at every refresh).

The edge introspects ``/v1/graphql`` as ``admin`` (with the admin secret), so it knows every
field's shape (list, ``_by_pk``, ``_aggregate``, object, scalar) whatever the caller's role;
row limits per role come from the Hasura metadata's select permissions instead. When Hasura
cannot be introspected the edge keeps the last schema it had, or, before the first success,
estimates cost from the document alone and logs ``cost_estimated_without_schema``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
from collections.abc import Callable

import orjson
from graphql import get_introspection_query

from edge.graphql.schema_info import SchemaInfo
from edge.upstream.base import Upstream, UpstreamError

__all__ = ["SchemaSource"]

log = logging.getLogger("edge.schema")
_QUERY = orjson.dumps({"query": get_introspection_query(descriptions=False), "operationName": "IntrospectionQuery"})


class SchemaSource:
    def __init__(
        self,
        upstream: Upstream,
        *,
        admin_secret: str,
        refresh_seconds: float,
        on_change: Callable[[SchemaInfo], None],
    ) -> None:
        self.upstream = upstream
        self.headers = [(b"x-hasura-admin-secret", admin_secret.encode("latin-1")), (b"x-hasura-role", b"admin")]
        self.refresh_seconds = refresh_seconds
        self.on_change = on_change
        self.schema: SchemaInfo | None = None
        self.refreshes = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._digest = b""  # of the answer self.schema was built from
        self._refreshing = asyncio.Lock()

    async def start(self) -> None:
        """Introspect once (never raises) and start the periodic refresh."""
        if not await self.refresh():
            log.warning("cost_estimated_without_schema", extra={"reason": "introspection failed at start"})
        if self.refresh_seconds > 0:
            self._task = asyncio.create_task(self._poll(), name="edge-schema-refresh")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> bool:
        """Introspect now; True when a schema is loaded (a new answer replaces the previous schema).

        One at a time: a refresh asked for during another (``/admin/schema/refresh`` during the periodic one)
        introspects after it, so an older answer's build never finishes last and replaces a newer schema.
        """
        async with self._refreshing:
            return await self._refresh()

    async def _refresh(self) -> bool:
        try:
            response = await self.upstream.post(_QUERY, self.headers, timeout=30.0)
            if response.status != 200:
                raise ValueError(f"introspection answered {response.status}")
            digest = hashlib.blake2b(response.body, digest_size=16).digest()
            if digest == self._digest and self.schema is not None:
                self.refreshes += 1
                return True  # the same answer: the same schema, and nothing to build
            schema = await asyncio.to_thread(_schema_from_answer, response.body)
        except (UpstreamError, Exception) as exc:  # any failure keeps the previous schema; the reason is logged
            self.failures += 1
            log.warning("schema_introspection_failed", extra={"reason": type(exc).__name__})
            return False
        if self.schema is not None and gc.get_freeze_count():
            # The schema replaced may be frozen with what start-up built (edge/serve.py). Its types refer to
            # each other, so only the collector can free it, and the collector never looks at frozen objects.
            gc.unfreeze()
        self.schema = schema
        self._digest = digest
        self.refreshes += 1
        self.on_change(schema)
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()


def _schema_from_answer(body: bytes) -> SchemaInfo:
    """The schema in an introspection answer; raises ValueError when the answer has no ``data``.

    Run in a worker thread. Everything it allocates lives on, so the collections the allocations would trigger
    find nothing, and each holds the interpreter's lock, the event loop's too, for as long as it traverses.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        document = orjson.loads(body)
        if not isinstance(document, dict) or "data" not in document:
            raise ValueError("introspection answered without data")
        return SchemaInfo.from_introspection(document)
    finally:
        if collecting:
            gc.enable()
