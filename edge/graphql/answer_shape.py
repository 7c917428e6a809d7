"""Hasura's answer read for its cost alone: only the members the actual cost's walk looks at.

The actual cost and the rows (:func:`edge.graphql.actual_cost.cost_and_rows`) look at the answer's
object and list fields and at whether a priced scalar is present; the column values a client asked
for are most of an answer's bytes and objects, and nothing reads them. :func:`slim_answer` decodes
the answer with msgspec into ``TypedDict`` types built from the operation's tree
(:meth:`CostModel.tree`): members not in the tree are skipped without building a Python object, a
priced scalar is kept as ``msgspec.Raw`` (its presence is what counts), and the walk then runs on
the result unchanged. It costs about half of ``orjson.loads`` on the benchmarks' answer
(``docs/benchmarks.md``), and less the more columns the answer has.

The walk gives the same figures on this slim answer as on the whole one: a kept member has the same
shape, a skipped one is never looked up. Where the walk's tolerance would matter (a scalar where an
object was expected, a list inside a list, a row that is neither an object nor ``null``), the answer
does not match the types and :func:`slim_answer` returns None: the caller then reads the whole
answer with orjson, as it does for an answer it must rewrite (a batch, suggestions to strip).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Final

import msgspec

from edge.graphql.cost import ResponseField

__all__ = ["slim_answer"]

_MAX_DECODERS: Final = 1024
"""Decoders kept (one per operation tree); then the cache starts again, like the cost model's memos."""

# ``TypedDict`` called with a name and a dict of fields: the documented way to build one at run time,
# which mypy only checks for literal arguments.
_typed_dict: Final[Any] = typing.TypedDict

_UNBUILT: Final[Any] = object()
_decoders: dict[tuple[ResponseField, ...], msgspec.json.Decoder[Any] | None] = {}


def slim_answer(body: bytes, tree: tuple[ResponseField, ...]) -> dict[str, Any] | None:
    """The answer's ``data``, ``errors`` and ``extensions`` members, with ``data`` cut to ``tree``;
    None when the answer does not have that shape (or is not JSON): read it whole instead."""
    decoder = _decoders.get(tree, _UNBUILT)  # None: the tree has no such decoder (see ``_object_type``)
    if decoder is _UNBUILT:
        if len(_decoders) >= _MAX_DECODERS:
            _decoders.clear()
        decoder = _decoders[tree] = _decoder(tree)
    if decoder is None:
        return None
    try:
        answer: dict[str, Any] = decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return answer


def _decoder(tree: tuple[ResponseField, ...]) -> msgspec.json.Decoder[Any] | None:
    data = _object_type(tree)
    if data is None:
        return None
    answer = _typed_dict("Answer", {"data": data | None, "errors": msgspec.Raw, "extensions": msgspec.Raw}, total=False)
    return msgspec.json.Decoder(answer)


def _object_type(tree: tuple[ResponseField, ...]) -> Any:
    """The ``TypedDict`` of an object whose members are ``tree``'s fields; None when two fields share a
    response key (the walk looks such a key up once per field, which one member type cannot express).
    Iterative post-order: a tree is as deep as the operation, and no depth is assumed."""
    built: dict[int, Any] = {}  # id(fields) -> the TypedDict of an object with those fields
    stack: list[tuple[tuple[ResponseField, ...], bool]] = [(tree, False)]
    while stack:
        fields, expanded = stack.pop()
        if not expanded:
            stack.append((fields, True))
            stack.extend((field.children, False) for field in fields if field.is_object)
            continue
        members: dict[str, Any] = {}
        for field in fields:
            if field.key in members:
                return None
            if field.is_object:
                row = built[id(field.children)]
                members[field.key] = types.GenericAlias(list, (row | None,)) | row | None
            else:
                members[field.key] = msgspec.Raw
        built[id(fields)] = _typed_dict("Row", members, total=False)
    return built[id(tree)]
