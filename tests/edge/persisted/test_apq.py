"""Apollo's automatic persisted queries through PersistedQueries.resolve, on the memory store and on Redis."""

from __future__ import annotations

import pytest

from edge.errors import BadRequest
from edge.graphql.manifest import Manifest, ManifestEntry
from edge.graphql.persisted import (
    InvalidPersistedQuery,
    MemoryPersistedQueryStore,
    PersistedQueries,
    PersistedQueryHashMismatch,
    PersistedQueryNotFound,
    PersistedQueryNotSupported,
    PersistedQueryStore,
)
from tests.edge.persisted.conftest import apq, sha

QUERY = "query Products { products { id name } }"


async def test_a_request_without_the_extension_comes_back_unchanged(store: PersistedQueryStore) -> None:
    persisted = PersistedQueries(store)
    request = {"query": QUERY, "extensions": {"tracing": True}}
    assert await persisted.resolve(request) is request


async def test_hash_only_miss_answers_persisted_query_not_found_with_200(store: PersistedQueryStore) -> None:
    persisted = PersistedQueries(store)
    with pytest.raises(PersistedQueryNotFound) as raised:
        await persisted.resolve(apq(sha(QUERY)))
    error = raised.value
    assert (error.status, error.code, error.message) == (200, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
    assert error.body() == (
        b'{"errors":[{"message":"PersistedQueryNotFound","extensions":{"code":"PERSISTED_QUERY_NOT_FOUND"}}]}'
    )
    assert (b"cache-control", b"private, no-cache, must-revalidate") in error.response_headers()
    assert persisted.misses == 1


async def test_register_then_hash_only_hit_fills_the_query(store: PersistedQueryStore) -> None:
    persisted = PersistedQueries(store)
    registered = await persisted.resolve(apq(sha(QUERY), QUERY, variables={"a": 1}))
    assert registered == {"query": QUERY, "variables": {"a": 1}}  # persistedQuery stripped: Hasura CE refuses it
    assert await store.get(sha(QUERY)) == QUERY
    assert persisted.registered == 1

    hit = await persisted.resolve(apq(sha(QUERY), operationName="Products"))
    assert hit == {"query": QUERY, "operationName": "Products"}
    assert persisted.hits == 1


async def test_other_extensions_are_kept_and_the_original_request_is_not_modified(store: PersistedQueryStore) -> None:
    persisted = PersistedQueries(store)
    request = apq(sha(QUERY), QUERY)
    request["extensions"]["trace"] = "on"  # type: ignore[index]
    resolved = await persisted.resolve(request)
    assert resolved["extensions"] == {"trace": "on"}
    assert "persistedQuery" in request["extensions"]  # type: ignore[operator]


async def test_a_hash_that_does_not_match_the_query_is_refused_and_not_stored(store: PersistedQueryStore) -> None:
    persisted = PersistedQueries(store)
    other = sha("query Other { x }")
    with pytest.raises(PersistedQueryHashMismatch) as raised:
        await persisted.resolve(apq(other, QUERY))
    assert (raised.value.status, raised.value.code) == (400, "PERSISTED_QUERY_HASH_MISMATCH")
    assert raised.value.message == "provided sha does not match query"
    assert await store.get(other) is None


@pytest.mark.parametrize("version", [2, 0, "1", None, True, 1.5])
async def test_versions_other_than_1_are_not_supported(store: PersistedQueryStore, version: object) -> None:
    request = {"extensions": {"persistedQuery": {"version": version, "sha256Hash": sha(QUERY)}}}
    with pytest.raises(PersistedQueryNotSupported) as raised:
        await PersistedQueries(store).resolve(request)
    error = raised.value
    assert (error.status, error.code, error.message) == (
        200,
        "PERSISTED_QUERY_NOT_SUPPORTED",
        "PersistedQueryNotSupported",
    )


@pytest.mark.parametrize(
    "sha256",
    ["", "abc", sha(QUERY).upper(), sha(QUERY)[:63], sha(QUERY) + "0", "g" * 64, None, 42, sha(QUERY) + "\n"],
)
async def test_a_malformed_hash_is_a_400(store: PersistedQueryStore, sha256: object) -> None:
    request = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}}}
    with pytest.raises(InvalidPersistedQuery) as raised:
        await PersistedQueries(store).resolve(request)
    assert (raised.value.status, raised.value.code) == (400, "bad-request")
    assert isinstance(raised.value, BadRequest)


async def test_malformed_extension_and_query_are_400s(store: PersistedQueryStore) -> None:
    persisted = PersistedQueries(store)
    with pytest.raises(InvalidPersistedQuery):
        await persisted.resolve({"extensions": {"persistedQuery": "abc"}})
    with pytest.raises(BadRequest):
        await persisted.resolve(apq(sha(QUERY), query=None) | {"query": 42})


async def test_a_null_persisted_query_is_dropped(store: PersistedQueryStore) -> None:
    resolved = await PersistedQueries(store).resolve({"query": QUERY, "extensions": {"persistedQuery": None}})
    assert resolved == {"query": QUERY}


async def test_manifest_operations_resolve_without_the_store(store: PersistedQueryStore) -> None:
    body = "query Listed {\n  products {\n    id\n  }\n}"
    manifest = Manifest([ManifestEntry(id=sha(body), name="Listed", type="query", body=body)])
    persisted = PersistedQueries(store, manifest=manifest)
    assert await persisted.resolve(apq(sha(body))) == {"query": body}
    # Registering a manifest operation does not copy it into the store.
    assert await persisted.resolve(apq(sha(body), body)) == {"query": body}
    assert await store.get(sha(body)) is None


async def test_queries_over_max_query_bytes_run_but_are_not_stored(store: PersistedQueryStore) -> None:
    persisted = PersistedQueries(store, max_query_bytes=10)
    assert await persisted.resolve(apq(sha(QUERY), QUERY)) == {"query": QUERY}
    assert await store.get(sha(QUERY)) is None
    with pytest.raises(PersistedQueryNotFound):
        await persisted.resolve(apq(sha(QUERY)))


async def test_non_ascii_queries_hash_their_utf8() -> None:
    query = 'query { products(where: {name: {_eq: "café ☕"}}) { id } }'
    persisted = PersistedQueries(MemoryPersistedQueryStore())
    await persisted.resolve(apq(sha(query), query))
    assert (await persisted.resolve(apq(sha(query))))["query"] == query


async def test_the_memory_store_is_a_bounded_lru() -> None:
    store = MemoryPersistedQueryStore(max_entries=2, max_query_bytes=100, max_total_bytes=1000)
    await store.put("a", "query A { a }")
    await store.put("b", "query B { b }")
    assert await store.get("a") is not None  # a is now the most recently used
    await store.put("c", "query C { c }")
    assert len(store) == 2
    assert await store.get("b") is None
    assert await store.get("a") == "query A { a }"
    await store.put("big", "x" * 101)
    assert (await store.get("big"), store.skipped) == (None, 1)

    by_bytes = MemoryPersistedQueryStore(max_entries=100, max_query_bytes=100, max_total_bytes=250)
    for name in "defg":
        await by_bytes.put(name, name * 100)
    assert len(by_bytes) == 2 and by_bytes.total_bytes == 200
    assert await by_bytes.get("d") is None and await by_bytes.get("g") == "g" * 100
