"""ApiKeyRepository against a real, migrated Postgres: what is stored, and the lifecycle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from edge.keys import (
    ApiKeyNotFound,
    ApiKeyRepository,
    ApiKeyValidationError,
    UnknownPlan,
    hash_key,
    open_repository,
    parse_key,
)

from .conftest import KNOWN_PLANS

pytestmark = pytest.mark.postgres


def owner() -> str:
    return f"owner-{uuid.uuid4().hex[:8]}"


async def test_create_stores_only_the_hash_and_returns_the_key_once(
    repository: ApiKeyRepository, database_url: str
) -> None:
    expires_at = datetime.now(UTC) + timedelta(days=30)
    key, plaintext = await repository.create(
        owner=" acme ",
        plan="partner",
        role="editor",
        session_variables={"x-hasura-org-id": "42"},
        expires_at=expires_at,
    )
    assert parse_key(plaintext).key_id == key.key_id
    assert (key.owner, key.plan, key.role, dict(key.session_variables)) == (
        "acme",
        "partner",
        "editor",
        {"x-hasura-org-id": "42"},
    )
    assert key.expires_at == expires_at and key.revoked_at is None and key.last_rotated_at is None
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT key_hash, row_to_json(k)::text FROM edge.api_keys k WHERE key_prefix = %s", (key.key_id,)
        ).fetchone()
    assert row is not None
    assert row[0] == hash_key(plaintext)
    assert plaintext.split("_", 2)[2] not in row[1]


async def test_get_by_key_id_returns_the_key_and_its_hash(repository: ApiKeyRepository) -> None:
    key, plaintext = await repository.create(owner=owner(), plan="free")
    assert await repository.get_by_key_id(key.key_id) == (key, hash_key(plaintext))
    assert await repository.get_by_key_id("zzzzzzzzzz") is None


async def test_role_defaults_to_the_table_default(repository: ApiKeyRepository) -> None:
    key, _ = await repository.create(owner=owner(), plan="free")
    assert key.role == "user"


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"plan": "gold"}, UnknownPlan, "unknown plan 'gold'"),
        ({"role": "admin"}, ApiKeyValidationError, "'admin' is not allowed"),
        ({"session_variables": {"x-hasura-role": "admin"}}, ApiKeyValidationError, "reserved"),
        ({"session_variables": {"X-Hasura-Org": "1"}}, ApiKeyValidationError, "lower-case"),
        ({"expires_at": datetime.now(UTC) - timedelta(seconds=1)}, ApiKeyValidationError, "future"),
    ],
)
async def test_create_refuses_invalid_keys_before_writing(
    repository: ApiKeyRepository, fields: dict[str, object], error: type[Exception], message: str
) -> None:
    who = owner()
    values: dict[str, object] = {"owner": who, "plan": "free", **fields}
    with pytest.raises(error, match=message):
        await repository.create(**values)  # type: ignore[arg-type]
    assert who not in {key.owner for key in await repository.list(include_revoked=True)}


async def test_list_hides_revoked_keys_unless_asked(repository: ApiKeyRepository) -> None:
    kept, _ = await repository.create(owner=owner(), plan="free")
    gone, _ = await repository.create(owner=owner(), plan="free")
    revoked = await repository.revoke(gone.key_id)
    assert revoked.revoked_at is not None
    active_ids = {key.key_id for key in await repository.list()}
    all_ids = {key.key_id for key in await repository.list(include_revoked=True)}
    assert kept.key_id in active_ids and gone.key_id not in active_ids
    assert {kept.key_id, gone.key_id} <= all_ids


async def test_revoke_is_idempotent_and_unknown_ids_are_not_found(repository: ApiKeyRepository) -> None:
    key, _ = await repository.create(owner=owner(), plan="free")
    first = await repository.revoke(key.key_id)
    again = await repository.revoke(key.key_id)
    assert first.revoked_at is not None and again.revoked_at == first.revoked_at
    with pytest.raises(ApiKeyNotFound, match="zzzzzzzzzz"):
        await repository.revoke("zzzzzzzzzz")


async def test_rotate_issues_a_new_key_and_gives_the_old_one_a_grace_period(database_url: str) -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    clock = [now]
    async with open_repository(database_url, known_plans=KNOWN_PLANS, wait=True, clock=lambda: clock[0]) as repo:
        old, old_plaintext = await repo.create(
            owner=owner(), plan="partner", role="editor", session_variables={"x-hasura-org-id": "7"},
            expires_at=now + timedelta(days=30),
        )  # fmt: skip
        clock[0] = now + timedelta(days=10)
        new, new_plaintext = await repo.rotate(old.key_id, grace=timedelta(hours=2))
        assert new.key_id != old.key_id and new_plaintext != old_plaintext
        assert (new.owner, new.plan, new.role, new.session_variables) == (
            old.owner,
            old.plan,
            old.role,
            old.session_variables,
        )
        assert new.created_at == clock[0]
        assert new.expires_at == clock[0] + timedelta(days=30)  # the old key's lifetime, from now
        found = await repo.get_by_key_id(old.key_id)
        assert found is not None
        rotated, old_hash = found
        assert old_hash == hash_key(old_plaintext)  # the old secret keeps working during the grace
        assert rotated.expires_at == clock[0] + timedelta(hours=2)
        assert rotated.last_rotated_at == clock[0] and rotated.revoked_at is None
        assert rotated.status(clock[0]) == "rotated"


async def test_rotate_never_lengthens_the_old_keys_life(repository: ApiKeyRepository) -> None:
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    old, _ = await repository.create(owner=owner(), plan="free", expires_at=expires_at)
    await repository.rotate(old.key_id, grace=timedelta(days=7))
    found = await repository.get_by_key_id(old.key_id)
    assert found is not None and found[0].expires_at == expires_at


async def test_rotate_refuses_revoked_expired_unknown_and_negative_grace(
    repository: ApiKeyRepository, database_url: str
) -> None:
    revoked, _ = await repository.create(owner=owner(), plan="free")
    await repository.revoke(revoked.key_id)
    with pytest.raises(ApiKeyValidationError, match="revoked"):
        await repository.rotate(revoked.key_id)
    expired, _ = await repository.create(owner=owner(), plan="free")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE edge.api_keys SET expires_at = now() - interval '1 minute' WHERE key_prefix = %s",
            (expired.key_id,),
        )
    with pytest.raises(ApiKeyValidationError, match="expired"):
        await repository.rotate(expired.key_id)
    with pytest.raises(ApiKeyNotFound):
        await repository.rotate("zzzzzzzzzz")
    with pytest.raises(ApiKeyValidationError, match="negative"):
        await repository.rotate(revoked.key_id, grace=timedelta(seconds=-1))


async def test_rotate_refuses_a_key_whose_plan_is_no_longer_configured(database_url: str) -> None:
    async with open_repository(database_url, known_plans={"free", "legacy"}, wait=True) as repo:
        old, _ = await repo.create(owner=owner(), plan="legacy")
    async with open_repository(database_url, known_plans=KNOWN_PLANS, wait=True) as repo:
        with pytest.raises(UnknownPlan, match="'legacy'"):
            await repo.rotate(old.key_id)
        found = await repo.get_by_key_id(old.key_id)
        assert found is not None and found[0].last_rotated_at is None  # the transaction rolled back
