"""Cache rules from configuration: cache an operation by name without a ``@cached`` directive.

A rule applies to a single query operation whose name matches exactly (anonymous operations never
match); a ``@cached`` directive in the request wins over a rule. Settings hold them as
``cache_rules: list[CacheRule]``, for example in YAML::

    cache_rules:
      - {operation_name: TopProducts, ttl: 120}
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from edge.cache.directive import DEFAULT_TTL, MAX_TTL, MIN_TTL

__all__ = ["CacheRule", "match_rule"]


class CacheRule(BaseModel):
    """Cache the query operation named ``operation_name`` for ``ttl`` seconds (1..300, default 60)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation_name: str = Field(min_length=1, max_length=256, pattern=r"^[_A-Za-z][_0-9A-Za-z]*$")
    ttl: int = Field(default=DEFAULT_TTL, ge=MIN_TTL, le=MAX_TTL)


def match_rule(rules: Sequence[CacheRule], operation_name: str | None) -> int | None:
    """The ttl of the first rule naming ``operation_name``, or None."""
    if operation_name is None:
        return None
    for rule in rules:
        if rule.operation_name == operation_name:
            return rule.ttl
    return None
