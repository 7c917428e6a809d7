"""Engine and session factory for the application database (async SQLAlchemy over psycopg 3, pooled)."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from actions.settings import ActionsSettings

__all__ = ["is_transient", "make_engine", "make_sessionmaker"]


def make_engine(settings: ActionsSettings) -> AsyncEngine:
    """A pooled engine. ``pool_pre_ping`` drops connections that died while idle (database restart), so
    one outage does not leave stale connections that fail the next requests."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        connect_args={"connect_timeout": settings.db_connect_timeout, "application_name": "hasura-edge-actions"},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: handlers read values after commit to build their responses.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def is_transient(error: BaseException) -> bool:
    """True for failures a retry may cure: the server is unreachable, the connection broke, the pool is
    exhausted. Constraint violations and bad SQL are not transient."""
    if isinstance(error, sa_exc.TimeoutError | sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return bool(error.connection_invalidated)
    return isinstance(error, ConnectionError | OSError)
