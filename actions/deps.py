"""Request-scoped dependencies as named ``Annotated`` aliases. The lifespan in app.py fills
``app.state.resources``; everything a route needs comes from there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from actions.providers import PaymentProvider
from actions.settings import ActionsSettings

__all__ = ["Resources", "ResourcesDep", "get_resources"]


@dataclass(frozen=True)
class Resources:
    settings: ActionsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    provider: PaymentProvider


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
