r"""Client JSON read so that every JSON parser reads it alike, or refused: :func:`loads`.

The edge parses a client's JSON with orjson and forwards the client's own bytes to Hasura. JSON parsers
differ where RFC 8259 leaves room: orjson keeps the *last* of two equal keys in an object, Hasura's
aeson the *first*; orjson reads a number as a 64-bit integer or a double, Hasura keeps every digit. A
body the edge checked could then mean something else to Hasura (``{"query": "<unchecked>", "query":
"<checked>"}`` would pass the safelist and the limits as the second query and run as the first).
:func:`loads` accepts only JSON that a first-wins parser, a last-wins parser and orjson read as the
same values; everything else is a 400:

- not JSON for orjson (invalid UTF-8, a lone surrogate, a BOM, NaN, trailing data, a number beyond a
  double such as ``1e400``, nesting over 1024): :class:`~edge.errors.InvalidJSON` (``invalid-json``);
- objects and arrays nested more than :data:`MAX_DEPTH` levels: :class:`~edge.errors.JSONTooDeep`;
- a key repeated in one object, compared after unescaping (``"query"`` and ``"\u0071uery"`` are one
  key): :class:`~edge.errors.DuplicateJSONKey`;
- an integer outside orjson's range (-2**63 .. 2**64-1: beyond it orjson silently reads a double), or a
  literal with a fraction or an exponent whose value is not exactly that of the double orjson reads
  (``0.1`` and ``1e2`` pass, ``1.00000000000000000001`` does not): :class:`~edge.errors.JSONNumberOutOfRange`.
  The cache key and the cost analysis use the edge's reading, so two values read as one double would
  share a cache entry.

Cost: orjson's parse and one walk of the parsed tree, counting its strings and depth and noting any
double. Most requests stop there: the quotes in the text prove that no key was dropped (below). When
they do not (an escaped quote, a repeated key) or the tree holds a double, the text is parsed again
by the standard library's ``json``, whose hooks see every key of every object and every number as
written, and both readings must be equal.

Why counting quotes proves the keys unique. In valid JSON a ``"`` is either a string's delimiter or an
escaped quote (``\"``) inside a string, so a text with ``S`` strings (keys and string values) and
``E`` escaped quotes holds ``Q = 2*S + E`` of them. The parsed tree holds ``T <= S`` of those strings,
and a dropped duplicate takes at least its key with it, so ``T < S`` whenever a key repeats.

- ``Q == 2*T`` means ``S == T`` (and ``E == 0``): nothing was dropped. (No separate test for ``\"`` is
  needed: an escaped quote makes ``Q`` exceed ``2*T``.)
- Else, when the text has no ``\u0022``: orjson writes each quote inside a string as ``\"``, so its
  serialisation of the tree holds ``2*T + D`` quotes, ``D`` being the quotes inside the tree's strings.
  Without ``\u0022`` every quote inside a string of the text comes from one ``\"``, and the tree's
  strings are some of the text's, so ``D <= E``: ``Q == 2*T + D`` again means ``S == T``. This keeps
  GraphQL documents with string literals (``where: {name: {_eq: \"bob\"}}``) off the slower path.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Final

import orjson

from edge.errors import DuplicateJSONKey, InvalidJSON, JSONNumberOutOfRange, JSONTooDeep

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH: Final = 128
"""Deepest nesting of objects and arrays accepted (orjson.dumps fails from 255 levels, orjson.loads from 1025)."""
_MIN_INT: Final = -(2**63)
_MAX_INT: Final = 2**64 - 1
_MAX_INT_CHARS: Final = 20  # "-9223372036854775808" and "18446744073709551615"; JSON has no leading zeros


class _Tally:
    """What one walk of the parsed tree found."""

    def __init__(self) -> None:
        self.strings = 0
        self.floats = False


def loads(data: bytes | str, where: str = "The request body") -> Any:
    """The JSON value of ``data``, read as orjson reads it, when every parser reads it so.

    ``where`` names the text in error messages ("The request body", "Query parameter 'variables'").
    Raises :class:`~edge.errors.InvalidJSON` or one of its subclasses (all 400).
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidJSON(f"{where} is not valid JSON") from None
    tally = _Tally()
    kind = type(value)
    if kind is dict or kind is list:
        _walk(value, 1, tally, where)
    elif kind is str:
        tally.strings = 1
    elif kind is float:
        tally.floats = True
    quotes = data.count(b'"') if isinstance(data, bytes) else data.count('"')
    if tally.floats or (quotes != 2 * tally.strings and not _quotes_match_reserialised(data, value, quotes)):
        _read_exactly(data, value, where)
    return value


def _walk(container: Any, depth: int, tally: _Tally, where: str) -> None:
    if depth > MAX_DEPTH:
        raise JSONTooDeep(f"{where} nests JSON objects and arrays more than {MAX_DEPTH} levels deep")
    items: Any = container
    if type(container) is dict:
        tally.strings += len(container)
        items = container.values()
    for item in items:
        kind = type(item)
        if kind is str:
            tally.strings += 1
        elif kind is dict or kind is list:
            _walk(item, depth + 1, tally, where)
        elif kind is float:
            tally.floats = True


def _quotes_match_reserialised(data: bytes | str, value: Any, quotes: int) -> bool:
    """Whether the text holds exactly as many ``"`` as orjson's serialisation of the tree (module docstring)."""
    if (b"\\u0022" in data) if isinstance(data, bytes) else ("\\u0022" in data):
        return False  # a quote written as \u0022 adds a quote to the tree but none to the text
    return orjson.dumps(value).count(b'"') == quotes


def _read_exactly(data: bytes | str, value: Any, where: str) -> None:
    """Parse again, seeing every key and number as written; refuse what orjson may have read differently."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        exact = _EXACT_DECODER.decode(text)
    except InvalidJSON as refused:  # raised by the hooks, which do not know ``where``
        raise type(refused)(f"{where} {refused.message}") from None
    except ValueError:
        raise InvalidJSON(f"{where} is not read alike by every JSON parser") from None
    if exact != value:
        raise InvalidJSON(f"{where} is not read alike by every JSON parser")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateJSONKey(f"repeats the key {key[:40]!r} in one JSON object; keys must be unique")
            seen.add(key)
    return result


def _exact_integer(literal: str) -> int:
    if len(literal) <= _MAX_INT_CHARS:
        number = int(literal)
        if _MIN_INT <= number <= _MAX_INT:
            return number
    raise _out_of_range(literal)


def _exact_double(literal: str) -> float:
    number = float(literal)
    if Decimal(literal) == Decimal(repr(number)):
        return number
    raise _out_of_range(literal)


def _no_constant(literal: str) -> Any:
    raise InvalidJSON(f"is not valid JSON ({literal} is not a JSON value)")


def _out_of_range(literal: str) -> JSONNumberOutOfRange:
    shown = literal if len(literal) <= 40 else literal[:37] + "..."
    return JSONNumberOutOfRange(
        f"has the number {shown}, which the edge cannot read exactly (integers must lie in -2^63..2^64-1, "
        "other numbers must be exact doubles); send such values as strings"
    )


# Built once: json.loads with hooks would build a decoder (and its scanner) on every call.
_EXACT_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_unique_object,
    parse_int=_exact_integer,
    parse_float=_exact_double,
    parse_constant=_no_constant,
)
