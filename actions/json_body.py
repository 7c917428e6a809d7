"""Read a request body as strict JSON, or refuse it with an InvalidInput the caller can act on.

Hasura POSTs UTF-8 JSON written by aeson, so everything refused here comes from something else calling
the service. What a valid body decodes to:

* numbers with a fraction or exponent become ``Decimal``: Hasura passes a ``numeric`` argument through as
  the client wrote it, and as a float ``148.0000000000000001`` would become ``148.0`` and slip past the
  currency-precision check;
* everything else as ``json.loads`` reads it.

Refused (400): a body that is not UTF-8 (a byte-order mark included), not JSON, ``NaN``/``Infinity``,
an integer too long for Python to convert (``sys.int_info.default_max_str_digits``), a lone UTF-16
surrogate escape (``"\\ud800"``: no UTF-8 text, so PostgreSQL and every JSON encoder downstream would fail
on it) -- all INVALID_JSON -- and objects/arrays nested more than ``MAX_JSON_DEPTH`` levels
(JSON_TOO_DEEP), the same bound the edge applies to client JSON.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from actions.errors import InvalidInput

__all__ = ["MAX_JSON_DEPTH", "parse_json_body"]

MAX_JSON_DEPTH = 128
"""Objects and arrays nested deeper than this are refused. Hasura's payloads nest about five levels
(a jsonb column adds its own depth)."""

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_body(raw: bytes) -> Any:
    """``raw`` decoded as strict JSON (module docstring). Raises InvalidInput.

    >>> parse_json_body(b'{"amount": 148.00, "n": [1]}')
    {'amount': Decimal('148.00'), 'n': [1]}
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"request body is not UTF-8: {exc.reason} at byte {exc.start}", code="INVALID_JSON") from exc
    if text.startswith("\ufeff"):
        raise InvalidInput("request body starts with a byte-order mark; send UTF-8 without one", code="INVALID_JSON")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError as exc:  # nesting deep enough to exhaust the decoder's stack
        raise _too_deep() from exc
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers over the digit limit
        raise InvalidInput(f"request body is not valid JSON: {exc}", code="INVALID_JSON") from exc
    _check_structure(value, check_strings=_SURROGATE_ESCAPE.search(raw) is not None)
    return value


def _too_deep() -> InvalidInput:
    return InvalidInput(
        f"request body nests objects and arrays more than {MAX_JSON_DEPTH} levels deep",
        code="JSON_TOO_DEEP",
        maxDepth=MAX_JSON_DEPTH,
    )


def _check_structure(value: Any, *, check_strings: bool) -> None:
    """Refuse nesting over MAX_JSON_DEPTH and, when the body has a surrogate escape, lone surrogates.
    Iterative, so the check itself never recurses."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            items: Any = node.values()
            if check_strings:
                _check_strings(node.keys())
        elif isinstance(node, list):
            items = node
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        if check_strings:
            _check_strings(item for item in items if isinstance(item, str))
        pending.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    if check_strings and isinstance(value, str):
        _check_strings([value])


def _check_strings(strings: Any) -> None:
    for string in strings:
        if _SURROGATE.search(string):
            raise InvalidInput(
                "request body has a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text",
                code="INVALID_JSON",
            )
