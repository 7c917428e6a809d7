"""How differently JSON parsers could read a text: first-wins (Hasura's aeson), last-wins, orjson.

``exact=True`` readers keep every digit of a number (as aeson's ``Scientific`` does), so a comparison with
:func:`as_exact` of orjson's reading also proves that the edge read every number exactly.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["as_exact", "first_wins", "last_wins", "read_alike"]


def _keep_first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def first_wins(text: bytes | str, *, exact: bool = False) -> Any:
    numbers: dict[str, Any] = {"parse_float": Decimal, "parse_int": Decimal} if exact else {}
    return json.loads(text, object_pairs_hook=_keep_first, **numbers)


def last_wins(text: bytes | str, *, exact: bool = False) -> Any:
    numbers: dict[str, Any] = {"parse_float": Decimal, "parse_int": Decimal} if exact else {}
    return json.loads(text, **numbers)


def as_exact(value: Any) -> Any:
    """``value`` with its numbers as the decimals they stand for (a double by its shortest repr)."""
    if isinstance(value, dict):
        return {key: as_exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_exact(item) for item in value]
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def read_alike(text: bytes | str) -> bool:
    """Whether first-wins and last-wins exact readers and orjson read ``text`` as the same values."""
    first = first_wins(text, exact=True)
    return first == last_wins(text, exact=True) and first == as_exact(orjson.loads(text))
