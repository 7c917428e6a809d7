"""Which kind of operation a document runs: query, mutation or subscription.

Parsing is slow (``docs/benchmarks.md``, "Operation analysis"), so results are kept in a bounded LRU
keyed by (document, operation name): a repeated operation costs a dict lookup. The parser is bounded
by a token limit so a hostile document cannot make it run long.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLError, OperationDefinitionNode, parse

from edge.errors import BadRequest

__all__ = ["InvalidDocument", "operation_type"]

MAX_TOKENS = 15_000


class InvalidDocument(BadRequest):
    """The document does not parse, or names no operation that exists in it (Hasura's code)."""

    code = "validation-failed"
    default_message = "not a valid graphql query"
    hasura_code: str | None = None  # already Hasura's (``toParsed`` in Hasura/GraphQL/Transport/HTTP/Protocol.hs)


@lru_cache(maxsize=2048)
def _operation_type(query: str, operation_name: str | None) -> str:
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        raise InvalidDocument() from None
    except RecursionError:
        raise InvalidDocument("the document is nested too deeply") from None
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    if operation_name is None:
        if len(operations) != 1:
            raise InvalidDocument(
                "exactly one operation has to be present in the document when operationName is not specified"
            )
        return operations[0].operation.value
    for node in operations:
        if node.name is not None and node.name.value == operation_name:
            return node.operation.value
    raise InvalidDocument("no such operation found in the document")


def operation_type(query: str, operation_name: str | None) -> str:
    """``"query"``, ``"mutation"`` or ``"subscription"``; raises ``InvalidDocument`` (400)."""
    return _operation_type(query, operation_name)
