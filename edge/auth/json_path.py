"""Hasura's JSON paths (``claims_namespace_path``, ``claims_map`` ``path``): parse, look up, encode.

The grammar is Hasura's ``parseJSONPath`` (``server/src-lib/Data/Parser/JSONPath.hs``), an
attoparsec parser with ordered choice, ported rule for rule:

* ``$`` alone is the root (the empty path); otherwise an optional ``$``, then one or more elements,
  then the end of the text;
* an element is a name with an optional leading ``.`` (a letter or ``_``, then letters, ASCII
  digits, ``-`` or ``_``; letters are Unicode letters, Haskell's ``isAlpha``), or a bracket with
  an optional leading ``.``: ``[`` then ASCII digits (an array index), a ``"``-quoted or a
  ``'``-quoted key, then ``]``;
* a quoted key is read as a JSON string: ``\\`` escapes are JSON's (``\\"``, ``\\\\``, ``\\/``,
  ``\\b``, ``\\f``, ``\\n``, ``\\r``, ``\\t``, ``\\uXXXX``), and in single quotes ``\\'`` is a
  quote and a bare ``"`` is a character; any other escape, or an unescaped control character,
  is refused.

So ``$.['https://myapp.com/jwt/claims'].user.id``, ``$["a.b"][0]``, ``a.b``, ``.a`` and
``$a`` are all paths, as they are for Hasura; ``$..a``, ``$.a.``, ``$[-1]``, ``$[*]`` and
``$.a b`` are not. Two corners where the edge refuses a path Hasura would read differently: an
index above 2**63 - 1 (Hasura's ``Int`` wraps it around) and a ``\\uXXXX`` escape that leaves a
lone UTF-16 surrogate (not a character; Hasura's ``Text`` cannot hold it).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["JSONPath", "encode_json_path", "is_missing", "lookup_json_path", "parse_json_path"]

#: A parsed path: object keys (``str``) and array indexes (``int``), from the root.
JSONPath = tuple[str | int, ...]

_MISSING: Final[Any] = object()
_MAX_INDEX = 2**63 - 1
_ASCII_DIGITS = frozenset("0123456789")
#: Hasura's hint when a path does not parse (``parseJSONPath``'s ``invalidMessage``).
_HINT = (
    'accept letters, digits, underscore (_) or hyphen (-) only; use quotes enclosed in brackets (["..."]) '
    "if there is any special character"
)
# Hasura's encodeJSONPath writes a key as `.key` when it is made of these (Hasura.Prelude's
# `alphabet` and `alphaNumerics`, ASCII only), and as a JSON string in brackets otherwise.
_PLAIN_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_PLAIN_REST = _PLAIN_FIRST | _ASCII_DIGITS | {"-"}


class _NoParse(Exception):
    """One alternative of the grammar did not match; the caller tries the next or gives up."""


@functools.lru_cache(maxsize=256)
def parse_json_path(path: str) -> JSONPath:
    """The elements of ``path`` as Hasura's ``parseJSONPath`` reads it, or ``ValueError``.

    The message quotes the path and the character where reading stopped, and gives Hasura's hint.
    """
    if not isinstance(path, str):
        raise ValueError("a JSON path must be a string")
    if path == "$":
        return ()
    position = 1 if path.startswith("$") else 0
    elements: list[str | int] = []
    while position < len(path):
        try:
            element, position = _element(path, position)
        except _NoParse:
            break
        elements.append(element)
    if not elements or position != len(path):
        raise ValueError(f"invalid JSON path {path!r} (at character {position + 1}): {_HINT}")
    return tuple(elements)


def _element(path: str, start: int) -> tuple[str | int, int]:
    # Ordered choice, as attoparsec's <|>: a (dotted) name first, else a (dotted) bracket.
    after_dot = start + 1 if path[start] == "." else start
    name_end = _name_end(path, after_dot)
    if name_end > after_dot:
        return path[after_dot:name_end], name_end
    return _bracket(path, after_dot)


def _name_end(path: str, start: int) -> int:
    """Where the name starting at ``start`` ends (``start`` itself when there is none)."""
    if start >= len(path) or not (path[start].isalpha() or path[start] == "_"):
        return start
    end = start + 1
    while end < len(path) and (path[end].isalpha() or path[end] in _ASCII_DIGITS or path[end] in "-_"):
        end += 1
    return end


def _bracket(path: str, start: int) -> tuple[str | int, int]:
    if start >= len(path) or path[start] != "[":
        raise _NoParse
    position = start + 1
    if position < len(path) and path[position] in _ASCII_DIGITS:
        end = position
        while end < len(path) and path[end] in _ASCII_DIGITS:
            end += 1
        index = int(path[position:end])
        if index > _MAX_INDEX:
            raise ValueError(f"invalid JSON path {path!r}: the array index {index} is larger than 2**63 - 1")
        element: str | int = index
        position = end
    elif position < len(path) and path[position] in "\"'":
        element, position = _quoted(path, position)
    else:
        raise _NoParse
    if position >= len(path) or path[position] != "]":
        raise _NoParse
    return element, position + 1


def _quoted(path: str, start: int) -> tuple[str, int]:
    """A quoted key from its opening quote: its text, and the position after the closing quote.

    Hasura turns the inside into the body of a JSON string (in single quotes ``\\'`` becomes
    ``'`` and ``"`` becomes ``\\"``) and decodes it as JSON.
    """
    delimiter = path[start]
    position = start + 1
    body: list[str] = []
    while position < len(path) and path[position] != delimiter:
        char = path[position]
        if char == "\\" and position + 1 < len(path):
            escaped = path[position + 1]
            body.append("'" if delimiter == "'" and escaped == "'" else "\\" + escaped)
            position += 2
        else:
            body.append('\\"' if delimiter == "'" and char == '"' else char)
            position += 1
    if position >= len(path):
        raise _NoParse
    try:
        key = json.loads('"' + "".join(body) + '"')
    except ValueError:
        raise _NoParse from None
    if any("\ud800" <= char <= "\udfff" for char in key):
        raise ValueError(f"invalid JSON path {path!r}: a \\u escape leaves a lone UTF-16 surrogate")
    return key, position + 1


def lookup_json_path(document: Any, path: JSONPath) -> Any:
    """The value at ``path`` in ``document``, or a sentinel :func:`is_missing` recognises.

    As Hasura's ``executeJSONPath`` (``server/src-lib/Hasura/Server/Utils.hs``): a key needs an
    object that has it (a ``null`` value is found), an index needs an array that long.
    """
    current = document
    for element in path:
        if isinstance(element, int):
            if not isinstance(current, list) or element >= len(current):
                return _MISSING
            current = current[element]
        else:
            if not isinstance(current, Mapping) or element not in current:
                return _MISSING
            current = current[element]
    return current


def is_missing(value: Any) -> bool:
    """Whether :func:`lookup_json_path` found nothing."""
    return value is _MISSING


def encode_json_path(path: JSONPath) -> str:
    """``path`` written as Hasura's ``encodeJSONPath`` writes it in messages: ``$.a[0]["b.c"]``."""
    parts = ["$"]
    for element in path:
        if isinstance(element, int):
            parts.append(f"[{element}]")
        elif element and element[0] in _PLAIN_FIRST and all(char in _PLAIN_REST for char in element[1:]):
            parts.append("." + element)
        else:
            parts.append("[" + _aeson_string(element) + "]")
    return "".join(parts)


def _aeson_string(text: str) -> str:
    """``text`` as a JSON string the way aeson encodes it (only ``"``, ``\\`` and controls escaped)."""
    escaped = []
    for char in text:
        if char == '"':
            escaped.append('\\"')
        elif char == "\\":
            escaped.append("\\\\")
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\r":
            escaped.append("\\r")
        elif char == "\t":
            escaped.append("\\t")
        elif char < " ":
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
