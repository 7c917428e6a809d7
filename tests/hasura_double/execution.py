"""``/v1/graphql`` request handling after authentication: body decoding, document checks, execution.

As Hasura (``GQLReq``/``GQLBatchedReqs`` in server/src-lib/Hasura/GraphQL/Transport/HTTP/Protocol.hs): single
``{"query","variables"?,"operationName"?}`` or a JSON array (batch); a body
that is not JSON is ``invalid-json``; an unparsable document is ``validation-failed`` ``not a valid graphql
query`` at ``$.query``; operation selection errors use Hasura's texts. Subscriptions over HTTP get Hasura's
``unexpected-payload`` error (``throw400 UnexpectedPayload`` in ``Transport/HTTP.hs``). Documents are parsed
and validated once and cached (LRU).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)

from .data import resolve_field
from .errors import HasuraError, graphql_error_object
from .validation import NodePaths, hasura_error_for, node_paths

__all__ = ["Executor", "GraphQLRequest", "decode_graphql_body"]

PERSISTED_QUERY_NOT_SUPPORTED = HasuraError("PersistedQueryNotSupported", "not-supported")


@dataclass(frozen=True)
class GraphQLRequest:
    """``GQLReq`` (server/src-lib/Hasura/GraphQL/Transport/HTTP/Protocol.hs): camelCase keys on the wire."""

    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None


def _parse_failed(message: str, path: str) -> HasuraError:
    return HasuraError(message, "parse-failed", path=path)


def _decode_one(value: Any, path: str) -> GraphQLRequest:
    if not isinstance(value, dict):
        raise _parse_failed(f"parsing GQLReq failed, expected Object, but encountered {_kind(value)}", path)
    query = value.get("query")
    if query is None:
        extensions = value.get("extensions")
        if isinstance(extensions, dict) and "persistedQuery" in extensions:
            raise PERSISTED_QUERY_NOT_SUPPORTED
        raise _parse_failed('key "query" not found', path)
    if not isinstance(query, str):
        raise _parse_failed(f"parsing Text failed, expected String, but encountered {_kind(query)}", f"{path}.query")
    variables = value.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise _parse_failed(
            f"parsing HashMap failed, expected Object, but encountered {_kind(variables)}", f"{path}.variables"
        )
    operation_name = value.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _parse_failed(
            f"parsing Name failed, expected String, but encountered {_kind(operation_name)}", f"{path}.operationName"
        )
    return GraphQLRequest(query=query, variables=variables, operation_name=operation_name)


def _kind(value: Any) -> str:
    names = {dict: "Object", list: "Array", str: "String", bool: "Boolean", int: "Number", float: "Number"}
    return "Null" if value is None else names.get(type(value), "Value")


def decode_graphql_body(body: bytes) -> GraphQLRequest | list[GraphQLRequest]:
    """Decode a ``/v1/graphql`` POST body; raises :class:`HasuraError` (``invalid-json``/``parse-failed``)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HasuraError(
            f"Error in $: {exc.args[0] if exc.args else 'not a valid json value'}", "invalid-json"
        ) from None
    if isinstance(value, list):
        return [_decode_one(item, f"$[{index}]") for index, item in enumerate(value)]
    return _decode_one(value, "$")


@dataclass(frozen=True)
class _Parsed:
    document: DocumentNode
    errors: tuple[GraphQLError, ...]
    paths: NodePaths


class Executor:
    """Runs :class:`GraphQLRequest` s against one schema with the deterministic data resolver."""

    def __init__(self, schema: GraphQLSchema, *, field_suggestions: bool = False, cache_size: int = 512) -> None:
        self.schema = schema
        self.field_suggestions = field_suggestions
        self._cache: OrderedDict[str, _Parsed] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _parsed(self, query: str) -> _Parsed:
        with self._lock:
            cached = self._cache.get(query)
            if cached is not None:
                self._cache.move_to_end(query)
                return cached
        try:
            document = parse(query)
        except GraphQLError:
            raise HasuraError("not a valid graphql query", "validation-failed", path="$.query") from None
        parsed = _Parsed(document, tuple(validate(self.schema, document)), node_paths(document))
        with self._lock:
            self._cache[query] = parsed
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return parsed

    def _error(self, error: GraphQLError, parsed: _Parsed) -> HasuraError:
        return hasura_error_for(error, parsed.paths, suggestions=self.field_suggestions)

    def run(self, request: GraphQLRequest) -> dict[str, Any]:
        """Execute one request: ``{"data": ...}``; raises :class:`HasuraError` for request-level errors."""
        parsed = self._parsed(request.query)
        operation = select_operation(parsed.document, request.operation_name)
        declared = {d.variable.name.value for d in operation.variable_definitions or ()}
        unexpected = [name for name in (request.variables or {}) if name not in declared]
        if unexpected:
            raise HasuraError("unexpected variables in variableValues: " + ", ".join(unexpected), "validation-failed")
        if parsed.errors:
            raise self._error(parsed.errors[0], parsed)
        if operation.operation is OperationType.SUBSCRIPTION:
            raise HasuraError("subscriptions are not supported over HTTP, use websockets instead", "unexpected-payload")
        result = execute(
            self.schema,
            parsed.document,
            variable_values=request.variables,
            operation_name=operation.name.value if operation.name else None,
            field_resolver=resolve_field,
        )
        assert not hasattr(result, "__await__"), "the double's resolvers are synchronous"
        if result.errors and result.data is None:
            raise self._error(result.errors[0], parsed)
        if result.errors:
            errors = [graphql_error_object(HasuraError(e.message, "unexpected")) for e in result.errors]
            return {"data": result.data, "errors": errors}
        return {"data": result.data}


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode:
    """Hasura's operation selection and its messages (``getSingleOperation``; ``getTypedOp`` in older versions)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        if len(operations) != 1:
            raise HasuraError(
                "exactly one operation has to be present in the document when operationName is not specified",
                "validation-failed",
            )
        return operations[0]
    for operation in operations:
        if operation.name is not None and operation.name.value == operation_name:
            return operation
    raise HasuraError(f'no such operation found in the document: "{operation_name}"', "validation-failed")
