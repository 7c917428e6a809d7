"""Postgres access to ``edge.api_keys`` (psycopg 3, async, through an ``AsyncConnectionPool``).

Rotation issues a NEW key (new key id, new secret) with the same owner, plan, role and session
variables, and shortens the old key's life to ``now + grace`` (24 h by default; never lengthens it),
recording ``last_rotated_at`` on the old key. Both keys work during the grace period, so clients
roll over without downtime; then the old one answers ``api-key-expired``. The new key gets the old
key's lifetime (``expires_at - created_at``) counted from now, or no expiry if the old had none.
A revoked or expired key cannot be rotated: create a new one.

Usage::

    async with open_repository(url, known_plans={"free", "partner"}) as repository:
        key, plaintext = await repository.create(owner="acme", plan="free")
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from edge.keys.errors import ApiKeyNotFound, ApiKeyValidationError
from edge.keys.key_format import generate_key
from edge.keys.model import (
    ApiKey,
    validate_expires_at,
    validate_owner,
    validate_plan,
    validate_role,
    validate_session_variables,
)

__all__ = ["DEFAULT_ROTATION_GRACE", "ApiKeyRepository", "create_pool", "open_repository"]

DEFAULT_ROTATION_GRACE = timedelta(hours=24)

_COLUMNS = (
    "id, key_prefix, key_hash, owner, plan, role, session_variables, "
    "created_at, expires_at, revoked_at, last_rotated_at"
)
_SELECT_BY_KEY_ID = f"SELECT {_COLUMNS} FROM edge.api_keys WHERE key_prefix = %s"
_INSERT_ATTEMPTS = 5  # a key id collision (50 random bits) is astronomically rare; retry with a new id


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 5.0, connect_timeout: int = 5
) -> AsyncConnectionPool[AsyncConnection[DictRow]]:
    """An unopened pool of autocommit connections: a lookup is one round trip, writes use explicit transactions.

    ``timeout`` bounds the wait for a connection (``PoolTimeout`` after it); open it with ``await pool.open()``.
    """
    return AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": connect_timeout},
        connection_class=AsyncConnection[DictRow],
        name="edge-api-keys",
    )


@contextlib.asynccontextmanager
async def open_repository(
    database_url: str,
    *,
    known_plans: Collection[str],
    wait: bool = False,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 5.0,
    clock: Callable[[], datetime] = _utc_now,
) -> AsyncIterator[ApiKeyRepository]:
    """A repository over a new pool, closed on exit. ``wait=True`` fails fast (``PoolTimeout``) when the
    database is unreachable (the CLI); the edge leaves it False so it starts, and answers 503, without it."""
    pool = create_pool(database_url, min_size=min_size, max_size=max_size, timeout=timeout)
    try:
        await pool.open(wait=wait, timeout=timeout)
        yield ApiKeyRepository(pool, known_plans=known_plans, clock=clock)
    finally:
        await pool.close()


def _session_value(value: object) -> str:
    # Rows are validated on write; a value edited into the table by hand as a JSON number or boolean is sent
    # to Hasura as its JSON text, which is how Hasura reads session variables anyway.
    return value if isinstance(value, str) else json.dumps(value)


def _to_key(row: Mapping[str, Any]) -> ApiKey:
    variables = row["session_variables"] or {}
    return ApiKey(
        id=row["id"],
        key_id=row["key_prefix"],
        owner=row["owner"],
        plan=row["plan"],
        role=row["role"],
        session_variables={str(name): _session_value(value) for name, value in variables.items()},
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_rotated_at=row["last_rotated_at"],
    )


class ApiKeyRepository:
    """Create, find, list, revoke and rotate keys. ``known_plans`` are the configured plan names.

    Validation happens before any SQL, and the table's CHECK constraints back it up.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[DictRow]],
        *,
        known_plans: Collection[str],
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._pool = pool
        self._known_plans = frozenset(known_plans)
        self._clock = clock

    async def create(
        self,
        *,
        owner: str,
        plan: str,
        role: str | None = None,
        session_variables: Mapping[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """Store a new key; return it with its plaintext, which exists nowhere else afterwards.

        Raises ``ApiKeyValidationError`` (``UnknownPlan`` for a plan that is not configured).
        """
        now = self._clock()
        owner = validate_owner(owner)
        validate_plan(plan, self._known_plans)
        role = validate_role(role)
        variables = validate_session_variables(session_variables)
        expires_at = validate_expires_at(expires_at, now)
        async with self._pool.connection() as conn:
            return await self._insert(
                conn, owner=owner, plan=plan, role=role, variables=variables, expires_at=expires_at, now=now
            )

    async def get_by_key_id(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The key and its stored hash, or None. One query; revoked and expired keys are returned too."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_SELECT_BY_KEY_ID, (key_id,))
            row = await cursor.fetchone()
        if row is None:
            return None
        return _to_key(row), str(row["key_hash"])

    async def list(self, *, include_revoked: bool = False) -> builtins.list[ApiKey]:
        """Keys by creation time (expired ones included; revoked ones only with ``include_revoked``)."""
        where = "" if include_revoked else "WHERE revoked_at IS NULL"
        async with self._pool.connection() as conn:
            cursor = await conn.execute(f"SELECT {_COLUMNS} FROM edge.api_keys {where} ORDER BY created_at, key_prefix")
            rows = await cursor.fetchall()
        return [_to_key(row) for row in rows]

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key now (idempotent: an already revoked key keeps its first ``revoked_at``).

        Raises ``ApiKeyNotFound``. Edges in other processes see it within their cache TTL.
        """
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"UPDATE edge.api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE key_prefix = %s "
                f"RETURNING {_COLUMNS}",
                (self._clock(), key_id),
            )
            row = await cursor.fetchone()
        if row is None:
            raise ApiKeyNotFound(key_id)
        return _to_key(row)

    async def rotate(self, key_id: str, *, grace: timedelta = DEFAULT_ROTATION_GRACE) -> tuple[ApiKey, str]:
        """Issue the successor of a usable key and let the old one expire after ``grace`` (see the module doc).

        Returns the new key and its plaintext. Raises ``ApiKeyNotFound`` or ``ApiKeyValidationError``.
        """
        if grace < timedelta(0):
            raise ApiKeyValidationError("the grace period must not be negative")
        now = self._clock()
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_SELECT_BY_KEY_ID + " FOR UPDATE", (key_id,))
            row = await cursor.fetchone()
            if row is None:
                raise ApiKeyNotFound(key_id)
            old = _to_key(row)
            if old.revoked():
                raise ApiKeyValidationError(f"key {key_id} is revoked and cannot be rotated; create a new key")
            if old.expired(now):
                raise ApiKeyValidationError(f"key {key_id} has expired and cannot be rotated; create a new key")
            validate_plan(old.plan, self._known_plans)
            expires_at = None if old.expires_at is None else now + (old.expires_at - old.created_at)
            new = await self._insert(
                conn,
                owner=old.owner,
                plan=old.plan,
                role=old.role,
                variables=dict(old.session_variables),
                expires_at=expires_at,
                now=now,
            )
            end_of_grace = now + grace
            await conn.execute(
                "UPDATE edge.api_keys SET expires_at = least(coalesce(expires_at, %(end)s), %(end)s), "
                "last_rotated_at = %(now)s WHERE id = %(id)s",
                {"end": end_of_grace, "now": now, "id": old.id},
            )
        return new

    async def _insert(
        self,
        conn: AsyncConnection[DictRow],
        *,
        owner: str,
        plan: str,
        role: str | None,
        variables: dict[str, str],
        expires_at: datetime | None,
        now: datetime,
    ) -> tuple[ApiKey, str]:
        # role None: the column default ('user'), so the default lives in one place (the migration).
        columns = "key_prefix, key_hash, owner, plan, session_variables, created_at, expires_at"
        values = "%(key_id)s, %(key_hash)s, %(owner)s, %(plan)s, %(variables)s::jsonb, %(now)s, %(expires_at)s"
        if role is not None:
            columns += ", role"
            values += ", %(role)s"
        query = (
            f"INSERT INTO edge.api_keys ({columns}) VALUES ({values}) "
            f"ON CONFLICT (key_prefix) DO NOTHING RETURNING {_COLUMNS}"
        )
        for _ in range(_INSERT_ATTEMPTS):
            key = generate_key()
            params = {
                "key_id": key.key_id,
                "key_hash": key.key_hash,
                "owner": owner,
                "plan": plan,
                "variables": json.dumps(variables),
                "now": now,
                "expires_at": expires_at,
                "role": role,
            }
            cursor = await conn.execute(query, params)
            row = await cursor.fetchone()
            if row is not None:
                return _to_key(row), key.key
        raise RuntimeError("could not allocate a unique key id")
