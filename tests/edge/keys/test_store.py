"""ApiKeyStore over the real repository: resolution, constant-time comparison, cache, single flight, outages."""

from __future__ import annotations

import asyncio
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from edge.keys import (
    ApiKey,
    ApiKeyRepository,
    ApiKeyStore,
    ApiKeyStoreUnavailable,
    ExpiredApiKey,
    InvalidApiKey,
    RevokedApiKey,
    generate_key,
    hash_key,
    open_repository,
)

from .conftest import KNOWN_PLANS, CountingLookup, ManualClock

pytestmark = pytest.mark.postgres


async def new_key(repository: ApiKeyRepository, **fields: object) -> tuple[ApiKey, str]:
    values: dict[str, object] = {"owner": f"owner-{uuid.uuid4().hex[:8]}", "plan": "free", **fields}
    return await repository.create(**values)  # type: ignore[arg-type]


def wrong_secret(plaintext: str) -> str:
    """The same key id with another (well-formed) secret."""
    return plaintext[: -len(generate_key().key.split("_", 2)[2])] + generate_key().key.split("_", 2)[2]


async def test_a_created_key_resolves_to_its_record(repository: ApiKeyRepository) -> None:
    key, plaintext = await new_key(repository, role="editor", session_variables={"x-hasura-org-id": "42"})
    resolved = await ApiKeyStore(repository).resolve(plaintext)
    assert resolved == key
    assert resolved.session_variables == {"x-hasura-org-id": "42"} and resolved.role == "editor"


async def test_an_unknown_key_is_invalid(repository: ApiKeyRepository) -> None:
    with pytest.raises(InvalidApiKey):
        await ApiKeyStore(repository).resolve(generate_key().key)


async def test_a_malformed_key_is_refused_without_a_lookup(repository: ApiKeyRepository) -> None:
    lookup = CountingLookup(repository)
    with pytest.raises(InvalidApiKey):
        await ApiKeyStore(lookup).resolve("hek_not-a-key")
    assert lookup.calls == []


async def test_the_right_key_id_with_a_wrong_secret_is_invalid_and_compared_in_constant_time(
    repository: ApiKeyRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, plaintext = await new_key(repository)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    store = ApiKeyStore(repository)
    wrong = wrong_secret(plaintext)
    with pytest.raises(InvalidApiKey) as caught:
        await store.resolve(wrong)
    assert plaintext not in caught.value.message and wrong not in caught.value.message
    stored = hash_key(plaintext).encode()
    assert (hash_key(wrong).encode(), stored) in compared
    await store.resolve(plaintext)
    assert (stored, stored) in compared


async def test_a_revoked_key_is_refused_but_only_with_its_secret(repository: ApiKeyRepository) -> None:
    key, plaintext = await new_key(repository)
    await repository.revoke(key.key_id)
    store = ApiKeyStore(repository)
    with pytest.raises(RevokedApiKey) as caught:
        await store.resolve(plaintext)
    assert (caught.value.status, caught.value.code) == (401, "api-key-revoked")
    with pytest.raises(InvalidApiKey):  # a wrong secret learns nothing about the key's state
        await store.resolve(wrong_secret(plaintext))


async def test_an_expired_key_is_refused(repository: ApiKeyRepository, database_url: str) -> None:
    key, plaintext = await new_key(repository)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE edge.api_keys SET expires_at = now() - interval '1 second' WHERE key_prefix = %s", (key.key_id,)
        )
    with pytest.raises(ExpiredApiKey) as caught:
        await ApiKeyStore(repository).resolve(plaintext)
    assert (caught.value.status, caught.value.code) == (401, "api-key-expired")


async def test_a_cached_key_expires_on_time(repository: ApiKeyRepository) -> None:
    now = datetime.now(UTC)
    wall = [now]
    _, plaintext = await new_key(repository, expires_at=now + timedelta(minutes=1))
    lookup = CountingLookup(repository)
    store = ApiKeyStore(lookup, ttl=3600, wall_clock=lambda: wall[0])
    await store.resolve(plaintext)
    wall[0] = now + timedelta(minutes=1)
    with pytest.raises(ExpiredApiKey):
        await store.resolve(plaintext)
    assert len(lookup.calls) == 1


async def test_repeated_resolves_of_one_key_cost_one_query_within_the_ttl(repository: ApiKeyRepository) -> None:
    _, plaintext = await new_key(repository)
    lookup = CountingLookup(repository)
    store = ApiKeyStore(lookup, clock=ManualClock())
    for _ in range(100):
        await store.resolve(plaintext)
    assert len(lookup.calls) == 1


async def test_wrong_secrets_for_a_known_key_id_are_answered_from_the_cache(repository: ApiKeyRepository) -> None:
    _, plaintext = await new_key(repository)
    lookup = CountingLookup(repository)
    store = ApiKeyStore(lookup, clock=ManualClock())
    await store.resolve(plaintext)
    for _ in range(20):
        with pytest.raises(InvalidApiKey):
            await store.resolve(wrong_secret(plaintext))
    assert len(lookup.calls) == 1


async def test_the_entry_is_reloaded_after_the_ttl(repository: ApiKeyRepository) -> None:
    key, plaintext = await new_key(repository)
    clock = ManualClock()
    lookup = CountingLookup(repository)
    store = ApiKeyStore(lookup, ttl=30, clock=clock)
    await store.resolve(plaintext)
    await repository.revoke(key.key_id)  # as the CLI would, from elsewhere
    clock.advance(29.9)
    await store.resolve(plaintext)  # still cached: cross-process revocation waits for the TTL
    clock.advance(0.1)
    with pytest.raises(RevokedApiKey):
        await store.resolve(plaintext)
    assert len(lookup.calls) == 2


async def test_invalidate_makes_a_revocation_immediate(repository: ApiKeyRepository) -> None:
    key, plaintext = await new_key(repository)
    lookup = CountingLookup(repository)
    store = ApiKeyStore(lookup, ttl=3600, clock=ManualClock())
    await store.resolve(plaintext)
    await repository.revoke(key.key_id)
    store.invalidate(key.key_id)
    with pytest.raises(RevokedApiKey):
        await store.resolve(plaintext)
    assert len(lookup.calls) == 2


async def test_unknown_key_ids_are_cached_negatively_for_the_negative_ttl(repository: ApiKeyRepository) -> None:
    clock = ManualClock()
    lookup = CountingLookup(repository)
    store = ApiKeyStore(lookup, negative_ttl=5, clock=clock)
    unknown = generate_key()
    for _ in range(50):
        with pytest.raises(InvalidApiKey):
            await store.resolve(unknown.key)
        with pytest.raises(InvalidApiKey):  # any secret under that key id
            await store.resolve(generate_key(unknown.key_id).key)
    assert lookup.calls == [unknown.key_id]
    clock.advance(5)
    with pytest.raises(InvalidApiKey):
        await store.resolve(unknown.key)
    assert lookup.calls == [unknown.key_id] * 2


async def test_a_key_created_after_a_negative_lookup_works_after_the_negative_ttl(
    repository: ApiKeyRepository, database_url: str
) -> None:
    clock = ManualClock()
    store = ApiKeyStore(repository, negative_ttl=5, clock=clock)
    probe = generate_key()
    with pytest.raises(InvalidApiKey):
        await store.resolve(probe.key)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO edge.api_keys (key_prefix, key_hash, owner, plan) VALUES (%s, %s, 'late', 'free')",
            (probe.key_id, probe.key_hash),
        )
    with pytest.raises(InvalidApiKey):
        await store.resolve(probe.key)
    clock.advance(5)
    assert (await store.resolve(probe.key)).owner == "late"


async def test_both_caches_are_bounded_and_random_ids_do_not_evict_keys_in_use(
    repository: ApiKeyRepository,
) -> None:
    lookup = CountingLookup(repository)
    store = ApiKeyStore(lookup, max_entries=3, clock=ManualClock())
    keys = [await new_key(repository) for _ in range(4)]
    for _, plaintext in keys[:3]:
        await store.resolve(plaintext)
    for _ in range(10):
        with pytest.raises(InvalidApiKey):
            await store.resolve(generate_key().key)
    assert len(store) == 6  # 3 keys + the 3 most recent unknown ids
    for _, plaintext in keys[:3]:
        await store.resolve(plaintext)
    assert len(lookup.calls) == 3 + 10
    await store.resolve(keys[3][1])  # a fourth key evicts the least recently used one
    await store.resolve(keys[0][1])
    assert lookup.calls[-2:] == [keys[3][0].key_id, keys[0][0].key_id]


async def test_fifty_concurrent_misses_share_one_query(repository: ApiKeyRepository) -> None:
    key, plaintext = await new_key(repository)
    gate = asyncio.Event()
    lookup = CountingLookup(repository, gate=gate)
    store = ApiKeyStore(lookup)
    pending = asyncio.gather(*(store.resolve(plaintext) for _ in range(50)))
    await asyncio.sleep(0.01)
    gate.set()
    resolved = await pending
    assert resolved == [key] * 50
    assert lookup.calls == [key.key_id]


async def test_concurrent_misses_for_an_unknown_id_share_one_query(repository: ApiKeyRepository) -> None:
    gate = asyncio.Event()
    lookup = CountingLookup(repository, gate=gate)
    store = ApiKeyStore(lookup)
    unknown = generate_key()
    pending = asyncio.gather(*(store.resolve(unknown.key) for _ in range(50)), return_exceptions=True)
    await asyncio.sleep(0.01)
    gate.set()
    results = await pending
    assert all(isinstance(result, InvalidApiKey) for result in results)
    assert lookup.calls == [unknown.key_id]


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_lookup(repository: ApiKeyRepository) -> None:
    key, plaintext = await new_key(repository)
    gate = asyncio.Event()
    lookup = CountingLookup(repository, gate=gate)
    store = ApiKeyStore(lookup)
    impatient = asyncio.create_task(store.resolve(plaintext))
    patient = asyncio.create_task(store.resolve(plaintext))
    await asyncio.sleep(0.01)
    impatient.cancel()
    gate.set()
    assert await patient == key
    assert impatient.cancelled()
    assert lookup.calls == [key.key_id]


async def test_invalidate_during_a_lookup_keeps_its_stale_answer_out_of_the_cache(
    repository: ApiKeyRepository,
) -> None:
    key, plaintext = await new_key(repository)
    gate = asyncio.Event()
    lookup = CountingLookup(repository, gate=gate, read_first=True)
    store = ApiKeyStore(lookup, clock=ManualClock())
    first = asyncio.create_task(store.resolve(plaintext))
    await lookup.read.wait()  # the row has been read, before the revocation
    await repository.revoke(key.key_id)
    store.invalidate(key.key_id)
    gate.set()
    assert await first == key  # that request began before the revocation, and gets the answer read then
    with pytest.raises(RevokedApiKey):
        await store.resolve(plaintext)
    assert len(lookup.calls) == 2


async def test_an_unreachable_database_is_api_key_store_unavailable(closed_port_url: str) -> None:
    async with open_repository(closed_port_url, known_plans=KNOWN_PLANS, timeout=0.3) as repository:
        store = ApiKeyStore(repository)
        with pytest.raises(ApiKeyStoreUnavailable) as caught:
            await store.resolve(generate_key().key)
        assert (caught.value.status, caught.value.code) == (503, "api-key-store-unavailable")
        with pytest.raises(ApiKeyStoreUnavailable):  # failures are not cached: the next request tries again
            await store.resolve(generate_key().key)
        assert len(store) == 0


async def test_a_failing_lookup_fails_every_waiter_with_503_and_is_not_cached(repository: ApiKeyRepository) -> None:
    class Broken:
        calls = 0

        async def get_by_key_id(self, key_id: str) -> tuple[ApiKey, str] | None:
            self.calls += 1
            await asyncio.sleep(0.01)
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    broken = Broken()
    store = ApiKeyStore(broken)
    key = generate_key()
    results = await asyncio.gather(*(store.resolve(key.key) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(result, ApiKeyStoreUnavailable) for result in results)
    assert broken.calls == 1
    with pytest.raises(ApiKeyStoreUnavailable):
        await store.resolve(key.key)
    assert broken.calls == 2


async def test_a_lookup_that_hangs_is_503_after_the_lookup_timeout(repository: ApiKeyRepository) -> None:
    _, plaintext = await new_key(repository)
    gate = asyncio.Event()
    lookup = CountingLookup(repository, gate=gate)
    store = ApiKeyStore(lookup, lookup_timeout=0.05)
    with pytest.raises(ApiKeyStoreUnavailable):
        await store.resolve(plaintext)
    gate.set()  # the load finishes in the background and fills the cache for the next request
    await asyncio.sleep(0.05)
    await store.resolve(plaintext)
    assert len(lookup.calls) == 1
