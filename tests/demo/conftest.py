"""Databases for the schema, seed and metadata tests: one fresh database per test module, dropped afterwards."""

from collections.abc import Iterator

import pytest

from tests.support.migrations import migrated_database


@pytest.fixture(scope="module")
def migrated_database_url(postgres_server_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with every migration applied and no data."""
    with migrated_database(postgres_server_url, prefix=request.module.__name__.rsplit(".", 1)[-1]) as url:
        yield url


@pytest.fixture(scope="module")
def seeded_database_url(postgres_server_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with every migration applied and the seeds loaded once."""
    prefix = request.module.__name__.rsplit(".", 1)[-1] + "_seeded"
    with migrated_database(postgres_server_url, prefix=prefix, seeds=True) as url:
        yield url
