"""The ``@cached`` query directive of Hasura Cloud/EE, read and removed by the edge (pure).

Hasura CE accepts ``@cached`` and does nothing with it (its ``cacheLookup`` never finds an entry: the CE
``MonadExecuteQuery AppM`` instance in server/src-lib/Hasura/App.hs), so the edge
implements it. Semantics follow Hasura's docs (``docs/docs/caching/caching-config.mdx`` in
hasura/graphql-engine): ``query Q @cached(ttl: 120, refresh: true) { ... }``; ``ttl`` is in seconds,
default 60, at most 300 (Hasura Cloud's cap; the edge clamps to 1..300 instead of refusing);
``refresh: true`` forces the entry to be fetched again. Only a *literal* ``ttl``/``refresh`` counts (the
docs: a variable ``refresh`` has no effect); anything else falls back to the default.

Only a query operation is cached: ``@cached`` on a mutation or a subscription is left in place for
Hasura to judge. A document without the directive gives ``None`` and the caller forwards it byte for
byte; with it, ``forwarded_query`` is the document re-printed without the directive on the selected
operation. Results (and unparseable documents) are kept in a bounded LRU per ``(query, operation_name)``.

    >>> d = cache_directive("query Q @cached(ttl: 900) { users { id } }", None)
    >>> (d.ttl, d.refresh, d.forwarded_query)
    (300, False, 'query Q {\\n  users {\\n    id\\n  }\\n}')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    parse,
    print_ast,
)

__all__ = [
    "DEFAULT_TTL",
    "DIRECTIVE_NAME",
    "MAX_TTL",
    "MIN_TTL",
    "CacheDirective",
    "cache_directive",
    "clamp_ttl",
    "normalised_document",
]

DIRECTIVE_NAME = "cached"
DEFAULT_TTL = 60
MIN_TTL = 1
MAX_TTL = 300
_LRU_SIZE = 2048
_MAX_TOKENS = 100_000
"""A backstop only: the analysis stage has already bounded the document by the plan's token limit."""

# ``@`` then ``cached``, with GraphQL's ignored tokens (white space, commas, comments, BOM) allowed
# between them. A miss here only means the directive is forwarded to CE, which ignores it.
_MAY_HAVE_DIRECTIVE = re.compile(r"@(?:[\s,\ufeff]|#[^\n\r]*)*cached(?![_0-9A-Za-z])")


@dataclass(frozen=True, slots=True)
class CacheDirective:
    """What ``@cached`` on the selected query operation asks for."""

    ttl: int
    """Seconds, clamped to ``MIN_TTL..MAX_TTL`` (default ``DEFAULT_TTL``)."""
    refresh: bool
    """``refresh: true``: skip the lookup, fetch from Hasura and store the answer."""
    forwarded_query: str
    """The whole document without ``@cached`` on the selected operation (what Hasura CE receives)."""
    normalised: str
    """:func:`normalised_document` of the same request (the cache key's document)."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    directive: CacheDirective | None
    normalised: str | None


def clamp_ttl(ttl: int) -> int:
    """``ttl`` bounded to ``MIN_TTL..MAX_TTL``."""
    return max(MIN_TTL, min(MAX_TTL, ttl))


@lru_cache(maxsize=_LRU_SIZE)
def cache_directive(query: str, operation_name: str | None) -> CacheDirective | None:
    """The ``@cached`` directive of the selected query operation, or None (no directive, not a query,
    or a document that does not parse or select an operation: Hasura answers those itself).

    Cached per document and operation name: a cached query is sent again and again, and the answer
    then costs one look-up instead of a regular-expression scan and a second look-up."""
    if _MAY_HAVE_DIRECTIVE.search(query) is None:
        return None
    return _prepare(query, operation_name).directive


def normalised_document(query: str, operation_name: str | None) -> str:
    """The selected operation (without ``@cached``) and the document's fragments, printed by
    graphql-core: white space, comments and other operations do not change it. Raises ValueError when
    the document does not parse or selects no operation."""
    normalised = _prepare(query, operation_name).normalised
    if normalised is None:
        raise ValueError("the document does not parse or selects no operation")
    return normalised


@lru_cache(maxsize=_LRU_SIZE)
def _prepare(query: str, operation_name: str | None) -> _Prepared:
    try:
        document = parse(query, no_location=True, max_tokens=_MAX_TOKENS)
    except (GraphQLError, RecursionError):
        return _Prepared(None, None)
    operation = _select(document, operation_name)
    if operation is None:
        return _Prepared(None, None)
    cached = [node for node in operation.directives or () if node.name.value == DIRECTIVE_NAME]
    stripped = operation
    if cached:
        # Keyword construction works with graphql-core 3.2 (mutable nodes) and 3.3 (frozen dataclasses).
        stripped = OperationDefinitionNode(
            operation=operation.operation,
            name=operation.name,
            variable_definitions=operation.variable_definitions,
            directives=tuple(node for node in operation.directives or () if node.name.value != DIRECTIVE_NAME),
            selection_set=operation.selection_set,
        )
    fragments = [node for node in document.definitions if isinstance(node, FragmentDefinitionNode)]
    normalised = print_ast(DocumentNode(definitions=(stripped, *fragments)))
    if not cached or operation.operation is not OperationType.QUERY:
        return _Prepared(None, normalised)
    ttl, refresh = DEFAULT_TTL, False
    for argument in cached[0].arguments or ():
        value = argument.value
        if argument.name.value == "ttl" and isinstance(value, IntValueNode):
            ttl = clamp_ttl(int(value.value))
        elif argument.name.value == "refresh" and isinstance(value, BooleanValueNode):
            refresh = value.value
    definitions = tuple(stripped if node is operation else node for node in document.definitions)
    forwarded = print_ast(DocumentNode(definitions=definitions))
    return _Prepared(CacheDirective(ttl, refresh, forwarded, normalised), normalised)


def _select(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """Hasura's operation selection (as in ``edge.graphql.analysis``), None where Hasura refuses."""
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    for node in operations:
        if node.name is not None and node.name.value == operation_name:
            return node
    return None
