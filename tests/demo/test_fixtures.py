"""The session fixtures give working servers, and fresh_database() isolates and cleans up."""

import psycopg
import pytest
import redis

from tests.support.postgres import fresh_database, normalize_url, sqlalchemy_url

pytestmark = pytest.mark.postgres


def test_fresh_database_is_empty_and_dropped_afterwards(postgres_server_url: str) -> None:
    with fresh_database(postgres_server_url, prefix="fixture_check") as url:
        with psycopg.connect(url) as conn:
            name, version = conn.execute("SELECT current_database(), current_setting('server_version_num')").fetchone()
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
        assert name.startswith("fixture_check_")
        assert int(version) >= 150000
        assert tables == (0,)
    with psycopg.connect(postgres_server_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert left == (0,)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p%40ss@db:5433/app", "postgresql://u:p%40ss@db:5433/app"),
        ("host=127.0.0.1 port=5432 user=postgres dbname=test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("postgresql://postgres@/x?host=/tmp/sock", "postgresql://postgres@/x?host=%2Ftmp%2Fsock"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_normalize_url_replaces_database_and_keeps_options() -> None:
    url = normalize_url("postgresql://a@h/one?sslmode=disable", dbname="two")
    assert url == "postgresql://a@h/two?sslmode=disable"
    assert sqlalchemy_url(url) == "postgresql+psycopg://a@h/two?sslmode=disable"


@pytest.mark.redis
def test_redis_url_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        key = "hasura-edge:test:fixture-check"
        client.set(key, "1", ex=10)
        assert client.get(key) == b"1"
        client.delete(key)
    finally:
        client.close()
