"""ResponseCache around the proxy: miss -> store -> hit, what is never cached, identity isolation, single flight."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from edge.cache import (
    CACHE_KEY_HEADER,
    CacheRule,
    RedisResponseCache,
    ResponseCache,
    ResponseCacheStore,
    clear_key,
    clear_operation,
)
from edge.context import RequestContext
from edge.limits import redis_client_from_url
from edge.upstream.base import UpstreamResponse
from tests.edge.cache.conftest import JSON, FakeClock, FakeHasura, make_ctx

CACHED = "query Users @cached(ttl: 120) { users { id name } }"


def header(ctx: RequestContext, name: bytes) -> bytes | None:
    assert ctx.response is not None
    values = [value for key, value in ctx.response.headers if key == name]
    assert len(values) <= 1, f"{name!r} appears {len(values)} times"
    return values[0] if values else None


def data(ctx: RequestContext) -> object:
    assert ctx.response is not None
    return orjson.loads(ctx.response.body)["data"]


async def until_in_flight(cache: ResponseCache) -> None:
    """Until a leader holds the key (its store read may take a while on a loaded machine)."""
    async with asyncio.timeout(5):
        while cache.in_flight == 0:
            await asyncio.sleep(0.001)


async def run(cache: ResponseCache, hasura: FakeHasura, ctx: RequestContext) -> RequestContext:
    await cache.proxy_through(ctx, hasura)
    return ctx


async def test_a_miss_is_stored_and_the_next_request_is_a_hit(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    first = await run(cache, hasura, make_ctx(CACHED))
    assert header(first, b"x-cache") == b"MISS"
    assert header(first, b"cache-control") == b"private, max-age=120"
    key = header(first, CACHE_KEY_HEADER)
    assert key is not None and len(key) == 64
    assert header(first, b"x-request-id") == b"from-hasura"  # the upstream's own headers are kept on a miss
    clock.advance(20)
    second = await run(cache, hasura, make_ctx(CACHED))
    assert hasura.calls == 1
    assert header(second, b"x-cache") == b"HIT"
    assert header(second, b"cache-control") == b"private, max-age=100"
    assert header(second, CACHE_KEY_HEADER) == key
    assert header(second, b"content-type") == JSON[1]
    assert second.response is not None and first.response is not None
    assert second.response.body == first.response.body
    assert (cache.misses, cache.stores, cache.hits, cache.coalesced) == (1, 1, 1, 0)
    clock.advance(100)  # expired
    third = await run(cache, hasura, make_ctx(CACHED))
    assert header(third, b"x-cache") == b"MISS" and hasura.calls == 2


async def test_hasura_ce_receives_the_query_without_the_directive(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    ctx = make_ctx(CACHED, operation_name="Users", variables={"a": 1})
    await run(cache, hasura, ctx)
    forwarded = orjson.loads(hasura.bodies[0])
    assert forwarded == {
        "query": "query Users {\n  users {\n    id\n    name\n  }\n}",
        "operationName": "Users",
        "variables": {"a": 1},
    }


async def test_lookup_rewrites_the_body_only_for_a_request_that_goes_to_hasura(
    store: ResponseCacheStore, clock: FakeClock
) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    miss = make_ctx(CACHED)
    sent = miss.body
    decision = await cache.lookup(miss)
    assert decision.status == "miss" and decision.response is None
    assert "@cached" not in orjson.loads(miss.body)["query"]
    await hasura(miss)
    await cache.store(miss, decision, miss.response)
    hit = make_ctx(CACHED)
    as_sent = hit.body
    decision = await cache.lookup(hit)
    assert decision.status == "hit" and decision.response is not None
    assert hit.body is as_sent  # answered here: nothing is forwarded, so nothing is rewritten
    assert sent == as_sent


async def test_requests_without_a_directive_or_rule_are_untouched(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    ctx = make_ctx("query Users { users { id } }")
    body = ctx.body
    await run(cache, hasura, ctx)
    await run(cache, hasura, make_ctx("query Users { users { id } }"))
    assert hasura.calls == 2
    assert hasura.bodies[0] is body
    assert header(ctx, b"x-cache") is None and header(ctx, b"cache-control") is None


async def test_answers_with_errors_or_not_200_are_never_stored(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache = ResponseCache(store, clock=clock)
    for hasura in (FakeHasura(errors=True), FakeHasura(status=500)):
        first = await run(cache, hasura, make_ctx(CACHED))
        await run(cache, hasura, make_ctx(CACHED))
        assert hasura.calls == 2
        assert header(first, b"x-cache") == b"MISS"
        assert header(first, b"cache-control") is None and header(first, CACHE_KEY_HEADER) is None
    assert cache.stores == 0


async def test_non_json_answers_are_never_stored(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache = ResponseCache(store, clock=clock)
    decision = await cache.lookup(make_ctx(CACHED))
    ctx = make_ctx(CACHED)
    await cache.store(ctx, decision, UpstreamResponse(200, [(b"content-type", b"text/html")], b'{"data":{}}'))
    assert cache.stores == 0
    assert (await cache.lookup(make_ctx(CACHED))).status == "miss"


@pytest.mark.parametrize(
    "query",
    [
        "mutation M @cached { insert_users(objects: []) { affected_rows } }",
        "subscription S @cached { users { id } }",
    ],
)
async def test_mutations_and_subscriptions_are_never_cached(
    store: ResponseCacheStore, clock: FakeClock, query: str
) -> None:
    cache, hasura = ResponseCache(store, rules=[CacheRule(operation_name="M")], clock=clock), FakeHasura()
    ctx = make_ctx(query)
    body = ctx.body
    assert (await cache.lookup(ctx)).status == "bypass"
    assert ctx.body is body  # left for Hasura to judge
    await run(cache, hasura, make_ctx(query))
    await run(cache, hasura, make_ctx(query))
    assert hasura.calls == 2 and cache.stores == 0


async def test_batches_are_never_cached(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    ctx = make_ctx(CACHED, batch=True)
    body = ctx.body
    assert (await cache.lookup(ctx)).status == "bypass"
    assert ctx.body is body
    await run(cache, hasura, make_ctx(CACHED, batch=True))
    await run(cache, hasura, make_ctx(CACHED, batch=True))
    assert hasura.calls == 2 and cache.stores == 0


async def test_identities_never_see_each_others_answers(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    alice = {"x-hasura-user-id": "alice", "x-hasura-org-id": "1"}
    bob = {"x-hasura-user-id": "bob", "x-hasura-org-id": "1"}
    other_org = {"x-hasura-user-id": "alice", "x-hasura-org-id": "2"}
    identities = [("user", alice), ("user", bob), ("user", other_org), ("editor", alice)]
    for role, session in identities:
        ctx = await run(cache, hasura, make_ctx(CACHED, role=role, session=session))
        assert header(ctx, b"x-cache") == b"MISS"
    assert hasura.calls == 4
    for role, session in identities:
        ctx = await run(cache, hasura, make_ctx(CACHED, role=role, session=session))
        assert header(ctx, b"x-cache") == b"HIT"
        assert data(ctx) == {"role": role, "vars": session, "call": data(ctx)["call"]}  # type: ignore[index]
    same_session_other_order = {"x-hasura-org-id": "1", "x-hasura-user-id": "bob"}
    ctx = await run(cache, hasura, make_ctx(CACHED, session=same_session_other_order))
    assert header(ctx, b"x-cache") == b"HIT" and data(ctx) == {"role": "user", "vars": bob, "call": 2}
    assert hasura.calls == 4


async def test_variables_and_forwarded_cookies_are_part_of_the_key(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    await run(cache, hasura, make_ctx(CACHED, variables={"id": 1}))
    await run(cache, hasura, make_ctx(CACHED, variables={"id": 2}))
    await run(cache, hasura, make_ctx(CACHED, variables={"id": 1}, headers=[(b"cookie", b"s=other")]))
    assert hasura.calls == 3
    hit = await run(cache, hasura, make_ctx(CACHED, variables={"id": 1}))
    assert header(hit, b"x-cache") == b"HIT"


async def test_configured_rules_cache_named_queries_without_the_directive(
    store: ResponseCacheStore, clock: FakeClock
) -> None:
    rules = [CacheRule(operation_name="Top", ttl=30), CacheRule(operation_name="Users", ttl=10)]
    cache, hasura = ResponseCache(store, rules=rules, clock=clock), FakeHasura()
    query = "query Top { products(limit: 3) { id } }"
    first = make_ctx(query)
    body = first.body
    await run(cache, hasura, first)
    assert hasura.bodies[0] is body  # nothing to strip: forwarded byte for byte
    assert header(first, b"cache-control") == b"private, max-age=30"
    assert header(await run(cache, hasura, make_ctx(query)), b"x-cache") == b"HIT"
    # The directive wins over a rule; anonymous operations never match a rule.
    assert header(await run(cache, hasura, make_ctx(CACHED)), b"cache-control") == b"private, max-age=120"
    await run(cache, hasura, make_ctx("{ products { id } }"))
    await run(cache, hasura, make_ctx("{ products { id } }"))
    assert hasura.calls == 4


async def test_refresh_true_skips_the_lookup_and_stores_the_new_answer(
    store: ResponseCacheStore, clock: FakeClock
) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    await run(cache, hasura, make_ctx(CACHED))
    refreshed = await run(cache, hasura, make_ctx("query Users @cached(ttl: 120, refresh: true) { users { id name } }"))
    assert hasura.calls == 2
    assert header(refreshed, b"x-cache") == b"MISS" and header(refreshed, b"cache-control") == b"private, max-age=120"
    assert "@cached" not in orjson.loads(hasura.bodies[1])["query"]
    hit = await run(cache, hasura, make_ctx(CACHED))
    assert header(hit, b"x-cache") == b"HIT" and data(hit)["call"] == 2  # type: ignore[index]


async def test_twenty_concurrent_misses_make_one_upstream_call(store: ResponseCacheStore, clock: FakeClock) -> None:
    # The upstream call outlasts every store read by far (Redis under a loaded CI machine included).
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura(delay=0.2)
    contexts = [make_ctx(CACHED) for _ in range(20)]
    await asyncio.gather(*(run(cache, hasura, ctx) for ctx in contexts))
    assert hasura.calls == 1
    bodies = {ctx.response.body for ctx in contexts if ctx.response is not None}
    assert len(bodies) == 1
    assert sorted(header(ctx, b"x-cache") or b"" for ctx in contexts) == [b"HIT"] * 19 + [b"MISS"]
    assert (cache.misses, cache.stores) == (1, 1)
    assert cache.coalesced + cache.hits == 19 and cache.coalesced >= 1


async def test_single_flight_with_explicit_lookup_and_store_hooks(store: ResponseCacheStore, clock: FakeClock) -> None:
    """The pipeline's two hooks: the leader's proxy is a task that sleeps, then calls ``store``."""
    cache = ResponseCache(store, clock=clock)
    upstream_calls = 0

    async def request() -> RequestContext:
        nonlocal upstream_calls
        ctx = make_ctx(CACHED)
        decision = await cache.lookup(ctx)
        if decision.response is not None:
            ctx.response = decision.response
            return ctx

        async def proxy() -> None:
            nonlocal upstream_calls
            upstream_calls += 1
            await asyncio.sleep(0.2)
            response = UpstreamResponse(200, [JSON], b'{"data":{"users":[{"id":1}]}}')
            ctx.response = response
            await cache.store(ctx, decision, response)

        await asyncio.create_task(proxy())
        return ctx

    contexts = await asyncio.gather(*(request() for _ in range(20)))
    assert upstream_calls == 1
    assert {ctx.response.body for ctx in contexts if ctx.response is not None} == {b'{"data":{"users":[{"id":1}]}}'}


async def test_a_waiter_whose_leader_is_too_slow_proxies_by_itself(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache = ResponseCache(store, wait_timeout=0.05, clock=clock)
    leader = await cache.lookup(make_ctx(CACHED))
    assert leader.status == "miss" and leader.leader
    waiter = await cache.lookup(make_ctx(CACHED))
    assert waiter.status == "miss" and not waiter.leader and waiter.key == leader.key
    ctx = make_ctx(CACHED)
    await cache.store(ctx, waiter, UpstreamResponse(200, [JSON], b'{"data":{"w":1}}'))  # a waiter may store
    assert header(ctx, b"x-cache") == b"MISS"
    await cache.store(make_ctx(CACHED), leader, UpstreamResponse(200, [JSON], b'{"data":{"l":1}}'))
    assert cache.stores == 2 and cache.in_flight == 0


async def test_waiters_proxy_by_themselves_when_the_leader_gets_errors(
    store: ResponseCacheStore, clock: FakeClock
) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura(delay=0.02, errors=True)
    await asyncio.gather(*(run(cache, hasura, make_ctx(CACHED)) for _ in range(5)))
    assert hasura.calls == 5 and cache.stores == 0 and cache.coalesced == 0


async def test_a_failed_proxy_releases_the_waiters_and_the_error_propagates(
    store: ResponseCacheStore, clock: FakeClock
) -> None:
    cache, failing = ResponseCache(store, clock=clock), FakeHasura(delay=0.02)
    failing.fail = RuntimeError("upstream down")
    healthy = FakeHasura()
    leader = asyncio.create_task(run(cache, failing, make_ctx(CACHED)))
    await until_in_flight(cache)
    waiter = await run(cache, healthy, make_ctx(CACHED))
    with pytest.raises(RuntimeError):
        await leader
    assert healthy.calls == 1 and header(waiter, b"x-cache") == b"MISS"
    assert cache.in_flight == 0


async def test_a_cancelled_leader_releases_the_waiters(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, slow, healthy = ResponseCache(store, clock=clock), FakeHasura(delay=10), FakeHasura()
    leader = asyncio.create_task(run(cache, slow, make_ctx(CACHED)))
    await until_in_flight(cache)
    waiter = asyncio.create_task(run(cache, healthy, make_ctx(CACHED)))
    await asyncio.sleep(0.005)
    leader.cancel()
    ctx = await asyncio.wait_for(waiter, 1)
    assert healthy.calls == 1 and header(ctx, b"x-cache") == b"MISS"


async def test_entries_larger_than_max_entry_bytes_are_not_stored(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, max_entry_bytes=10, clock=clock), FakeHasura()
    await run(cache, hasura, make_ctx(CACHED))
    await run(cache, hasura, make_ctx(CACHED))
    assert hasura.calls == 2 and cache.stores == 0


async def test_admin_clears_by_key_and_by_operation(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, clock=clock), FakeHasura()
    first = await run(cache, hasura, make_ctx(CACHED, session={"x-hasura-user-id": "1"}))
    await run(cache, hasura, make_ctx(CACHED, session={"x-hasura-user-id": "2"}))
    await run(cache, hasura, make_ctx(CACHED, session={"x-hasura-user-id": "3"}))
    key = header(first, CACHE_KEY_HEADER)
    assert key is not None
    assert await clear_key(store, key.decode()) is True
    assert await clear_key(store, key.decode()) is False
    assert await clear_key(store, "not-a-key") is False
    again = await run(cache, hasura, make_ctx(CACHED, session={"x-hasura-user-id": "1"}))
    assert header(again, b"x-cache") == b"MISS"
    assert await clear_operation(store, "Users") == 3
    assert await clear_operation(store, "Users") == 0
    assert await clear_operation(store, "bad name") == 0
    after = await run(cache, hasura, make_ctx(CACHED, session={"x-hasura-user-id": "2"}))
    assert header(after, b"x-cache") == b"MISS"


async def test_requests_without_a_session_are_never_cached(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache = ResponseCache(store, clock=clock)
    ctx = make_ctx(CACHED)
    ctx.identity = None
    assert (await cache.lookup(ctx)).status == "bypass"


async def test_cache_control_can_be_exactly_hasuras(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache, hasura = ResponseCache(store, private=False, clock=clock), FakeHasura()
    assert header(await run(cache, hasura, make_ctx(CACHED)), b"cache-control") == b"max-age=120"
    clock.advance(0.5)
    assert header(await run(cache, hasura, make_ctx(CACHED)), b"cache-control") == b"max-age=120"  # rounded up


async def test_a_cache_control_header_from_upstream_is_replaced(store: ResponseCacheStore, clock: FakeClock) -> None:
    cache = ResponseCache(store, clock=clock)
    ctx = make_ctx(CACHED)
    decision = await cache.lookup(ctx)
    upstream = UpstreamResponse(200, [JSON, (b"cache-control", b"no-store")], b'{"data":{}}')
    await cache.store(ctx, decision, upstream)
    assert header(ctx, b"cache-control") == b"private, max-age=120"


async def test_with_redis_down_requests_still_work_and_still_coalesce(clock: FakeClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    client = redis_client_from_url(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    store = RedisResponseCache(client, timeout=0.2, log_interval=60)
    try:
        cache, hasura = ResponseCache(store, clock=clock), FakeHasura(delay=0.3)
        contexts = [make_ctx(CACHED) for _ in range(5)]
        await asyncio.gather(*(run(cache, hasura, ctx) for ctx in contexts))
        assert hasura.calls == 1 and cache.coalesced == 4
        assert store.store_errors >= 2  # the reads, and the write
        assert all(ctx.response is not None and ctx.response.status == 200 for ctx in contexts)
    finally:
        await client.aclose()
