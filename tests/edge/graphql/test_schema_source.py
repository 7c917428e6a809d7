"""SchemaSource: Hasura's schema introspected, rebuilt only when the answer changes, and built off the event loop."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator, Sequence

import orjson
import pytest
from graphql import build_schema, get_introspection_query, graphql_sync

from edge.graphql.schema_info import SchemaInfo
from edge.graphql.schema_source import SchemaSource
from edge.upstream.base import UpstreamResponse
from edge.upstream.lean import LeanUpstream
from tests.hasura_double import HasuraDouble

BEFORE = "type query_root { users: [user!]! } type user { id: Int! name: String }"
AFTER = "type query_root { users: [user!]! user_by_pk(id: Int!): user } type user { id: Int! name: String }"
# Types enough for a build of about a tenth of a second: the event loop's thread gets the interpreter's lock
# back several times meanwhile (every 5 ms by default).
MANY_TABLES = " ".join(f"type t{n} {{ id: Int! name: String }}" for n in range(2000))


def introspection(sdl: str) -> bytes:
    schema = build_schema(sdl + " schema { query: query_root }")
    return orjson.dumps({"data": graphql_sync(schema, get_introspection_query(descriptions=False)).data})


class Answers:
    """An upstream that answers every POST with ``answer`` (after taking the next of ``queued``, if any), at
    once: a refresh then waits for nothing but what it hands to another thread."""

    def __init__(self, answer: bytes, status: int = 200) -> None:
        self.answer = answer
        self.status = status
        self.queued: list[bytes] = []
        self.posts = 0

    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        self.posts += 1
        if self.queued:
            self.answer = self.queued.pop(0)
        return UpstreamResponse(self.status, [(b"content-type", b"application/json")], self.answer)


def source_of(upstream: object, changes: list[SchemaInfo], admin_secret: str = "s") -> SchemaSource:
    return SchemaSource(
        upstream,  # type: ignore[arg-type]  # a refresh only posts
        admin_secret=admin_secret,
        refresh_seconds=0,
        on_change=changes.append,
    )


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


async def test_the_same_answer_keeps_the_schema_a_new_one_replaces_it() -> None:
    upstream, changes = Answers(introspection(BEFORE)), []
    source = source_of(upstream, changes)
    assert await source.refresh()
    first = source.schema
    assert first is not None and first.field("query_root", "user_by_pk") is None
    assert await source.refresh()  # the periodic refresh, Hasura unchanged: nothing rebuilt
    assert source.schema is first
    assert changes == [first]
    upstream.answer = introspection(AFTER)  # a migration added a field
    assert await source.refresh()
    assert source.schema is not first and source.schema is not None
    assert source.schema.field("query_root", "user_by_pk") is not None
    assert changes == [first, source.schema]
    assert (source.refreshes, source.failures, upstream.posts) == (3, 0, 3)


async def test_a_failed_refresh_keeps_the_schema_and_the_next_answer_is_compared_with_it() -> None:
    upstream, changes = Answers(introspection(BEFORE)), []
    source = source_of(upstream, changes)
    assert await source.refresh()
    first = source.schema
    upstream.answer = b'{"errors": [{"message": "not allowed"}]}'  # an answer without data
    assert not await source.refresh()
    upstream.answer, upstream.status = b"service unavailable", 503
    assert not await source.refresh()
    assert source.schema is first
    upstream.answer, upstream.status = introspection(BEFORE), 200
    assert await source.refresh()
    assert source.schema is first  # Hasura answers as before the failures: still nothing to build
    assert (len(changes), source.failures) == (1, 2)


async def test_a_refresh_asked_for_during_another_introspects_after_it() -> None:
    # Hasura's schema changes between two refreshes that overlap (the periodic one, and an admin's after a
    # migration): the older answer takes far longer to build, yet the newer schema is the one kept.
    older = introspection(f"{BEFORE} {MANY_TABLES}")
    upstream, changes = Answers(b""), []
    upstream.queued = [older, introspection(AFTER)]
    source = source_of(upstream, changes)
    assert await asyncio.gather(source.refresh(), source.refresh()) == [True, True]
    assert source.schema is not None and source.schema.field("query_root", "user_by_pk") is not None
    assert len(changes) == 2 and changes[-1] is source.schema


async def test_the_schema_is_built_while_the_event_loop_serves_others(collector_on: None) -> None:
    source, turns, refreshing = source_of(Answers(introspection(f"{BEFORE} {MANY_TABLES}")), []), 0, True
    collector_paused = False

    async def other_requests() -> None:
        nonlocal turns, collector_paused
        while refreshing:
            turns += 1
            collector_paused = collector_paused or not gc.isenabled()
            await asyncio.sleep(0)

    others = asyncio.create_task(other_requests())
    await asyncio.sleep(0)
    before = turns
    assert await source.refresh()  # the upstream answers at once: only the build can let the others run
    during, refreshing = turns - before, False
    await others
    assert during > 0
    assert collector_paused  # while the schema was built
    assert gc.isenabled()  # and on again after


async def test_a_build_that_fails_turns_the_collector_back_on(collector_on: None) -> None:
    source = source_of(Answers(b"not json"), [])
    assert not await source.refresh()
    assert gc.isenabled()


async def test_a_collector_turned_off_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        assert await source_of(Answers(introspection(BEFORE)), []).refresh()
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


async def test_hasuras_unchanged_schema_is_introspected_again_but_not_rebuilt(
    hasura: HasuraDouble, hasura_url: str
) -> None:
    upstream, changes = LeanUpstream(hasura_url, read_timeout=10.0), []
    source = source_of(upstream, changes, hasura.admin_secret)
    try:
        assert await source.refresh()
        assert await source.refresh()
    finally:
        await upstream.aclose()
    assert len(changes) == 1 and source.schema is changes[0]
    assert [record.json()["operationName"] for record in hasura.graphql_requests()] == ["IntrospectionQuery"] * 2


async def test_a_replaced_schema_is_collected_even_when_start_up_froze_it() -> None:
    # edge/serve.py freezes what start-up built, the first schema with it; a schema's types refer to each other,
    # so only the collector can free one, and it never looks at frozen objects.
    related = "type query_root { users: [user!]! } type user { id: Int! friends: [user!]! }"
    upstream, changes = Answers(introspection(related)), []
    source = source_of(upstream, changes)
    assert await source.refresh()
    assert source.schema is not None
    first = weakref.ref(source.schema.schema.type_map["user"])  # its field's type is itself: a cycle
    gc.collect()
    gc.freeze()
    try:
        upstream.answer = introspection(AFTER)
        assert await source.refresh()
        changes.clear()  # the test's own references to the schemas
        gc.collect()
        assert first() is None
    finally:
        gc.unfreeze()
