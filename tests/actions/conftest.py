"""Fixtures for the actions service: a freshly migrated and seeded database per test, the app with its
lifespan running, and an httpx client over ASGITransport (tests needing real sockets use start_server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from actions.app import create_app
from actions.providers import PaymentProvider, SimulatedProvider
from actions.settings import ActionsSettings
from tests.support.migrations import apply_seeds, apply_up
from tests.support.postgres import fresh_database

SECRET = "test-webhook-secret-0123456789abcdef"
ACTION_HEADERS = {"X-Hasura-Action-Secret": SECRET}
EVENT_HEADERS = {"X-Hasura-Webhook-Secret": SECRET}


@pytest.fixture
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A new database with all migrations and seeds applied; dropped after the test."""
    with fresh_database(postgres_server_url, prefix="actions") as url:
        apply_up(url)
        apply_seeds(url)
        yield url


def make_settings(database_url: str, **overrides: Any) -> ActionsSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "webhook_secret": SECRET,
        "db_pool_size": 5,
        "db_max_overflow": 25,
        "provider_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return ActionsSettings(**values)


@pytest.fixture
def settings(database_url: str) -> ActionsSettings:
    return make_settings(database_url)


@pytest.fixture
def provider() -> SimulatedProvider:
    return SimulatedProvider()


@pytest.fixture
async def app(settings: ActionsSettings, provider: PaymentProvider) -> AsyncIterator[FastAPI]:
    application = create_app(settings, provider=provider)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://actions.test") as c:
        yield c


class Db:
    """Synchronous look-ups on the test database, for asserting what was (not) written."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(query, params).fetchall()

    def value(self, query: str, *params: Any) -> Any:
        rows = self.rows(query, *params)
        return rows[0][0] if rows else None

    def count(self, table: str) -> int:
        return int(self.value(f"SELECT count(*) FROM {table}"))

    def counts(self) -> dict[str, int]:
        tables = ["payments", "payment_idempotency", "document_history", "low_stock_alerts", "order_confirmations"]
        return {table: self.count(table) for table in tables}

    def execute(self, query: str, *params: Any) -> None:
        with psycopg.connect(self.url) as conn:
            conn.execute(query, params)

    def make_order(self, *, user_id: str, total: str, currency: str = "USD", status: str = "awaiting_payment") -> str:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "INSERT INTO orders (user_id, status, total, currency) VALUES (%s, %s, %s, %s) RETURNING id",
                (user_id, status, Decimal(total), currency),
            ).fetchone()
        assert row is not None
        return str(row[0])


@pytest.fixture
def db(database_url: str) -> Db:
    return Db(database_url)
