"""A REST call's GraphQL variables: taken from the path, the query string and the JSON body as Hasura takes
them, then checked against the operation's variable types before Hasura is called.

Hasura's rules (``resolveVar``/``runCustomEndpoint`` in ``server/src-lib/Hasura/Server/Rest.hs``, the
``api/rest`` route in ``server/src-lib/Hasura/Server/App.hs``):

- the arguments are the query-string parameters, then the body's keys (when the body is a JSON
  object), then the URL's ``:name`` segments; a name given twice counts once, the later source
  winning: **path over body over query string**. A name that is not a GraphQL name is ignored;
- a name the operation does not declare is refused: 400 ``Unexpected variable <name>``;
- a declared variable that is not given is left out (Hasura then applies its default or null);
- a body value is the JSON value as sent;
- a path or query-string value is text: a list type is refused (``List variables are not currently
  supported in URL or Query parameters``); for ``Boolean`` an empty value is ``true``; for any other
  nullable type an empty value is left out; text that is JSON ``true``/``false`` is a boolean for
  ``Boolean``/``Bool``, JSON number text is a number for ``Int``, ``Float``, ``Number``, ``Double``,
  ``float8`` and ``numeric``; everything else is the text itself, as a string.

Where the edge is stricter, and why: a query-string parameter given twice is refused (Hasura keeps the
last; the edge forwards what it read, and one reading leaves no doubt which). What reaches Hasura is
only what decided the variables: the kept query-string parameters (percent-encoded again), and the
kept body keys (serialised by orjson), so Hasura's precedence has nothing left to choose between.

The values are then coerced by graphql-core against the operation's variable types
(``get_variable_values``): with Hasura's introspected schema when it knows every type the operation
names, else with the types the operation declares (built-in scalars checked, Hasura's own scalars and
input objects accepted as they are). A value of the wrong type (``id=abc`` for ``Int!``, a missing
``String!``) is 400 ``validation-failed`` without a call to Hasura.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from graphql import (
    GraphQLField,
    GraphQLInputType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    TypeNode,
    get_variable_values,
    is_input_type,
    specified_scalar_types,
)

from edge import strict_json
from edge.errors import BadRequest, InvalidJSON, JSONNumberOutOfRange
from edge.graphql.operation import InvalidDocument
from edge.rest.endpoints import Endpoint

__all__ = ["InvalidVariables", "RestArguments", "resolve_arguments", "validate_variables"]

_NAME: Final = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_BOOLEAN_TYPES: Final = frozenset({"Boolean", "Bool"})
_NUMBER_TYPES: Final = frozenset({"Int", "Float", "Number", "Double", "float8", "numeric"})


class InvalidVariables(InvalidDocument):
    """A REST call's variable does not fit the operation's type (Hasura's ``validation-failed``)."""


@dataclass(frozen=True, slots=True)
class RestArguments:
    """The variables Hasura will run the operation with, and what is forwarded to produce exactly them."""

    variables: dict[str, Any]
    query: tuple[tuple[str, str], ...]
    """The query-string parameters forwarded (those that decided a variable)."""
    body: dict[str, Any] | None
    """The body keys forwarded (those that decided a variable), None when there are none."""

    def query_string(self) -> str:
        return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in self.query)


def _type_parts(node: TypeNode) -> tuple[bool, bool, str]:
    """(is a list, is nullable, named type) of a variable's type as Hasura's ``resolveVar`` reads it."""
    nullable = True
    if isinstance(node, NonNullTypeNode):
        nullable = False
        node = node.type
    if isinstance(node, ListTypeNode):
        return True, nullable, ""
    assert isinstance(node, NamedTypeNode)
    return False, nullable, node.name.value


def _from_text(name: str, text: str, type_node: TypeNode) -> tuple[bool, Any]:
    """(given, value) for a path or query-string value (``resolveVar`` for a ``Left``)."""
    is_list, nullable, named = _type_parts(type_node)
    if is_list:
        raise BadRequest(
            f"List variables are not currently supported in URL or Query parameters. "
            f'(Variable {name}, with value "{text}")'
        )
    if named == "Boolean" and text == "":
        return True, True
    if nullable and text == "":
        return False, None
    try:
        decoded = strict_json.loads(text, f"The value of {name}")
    except JSONNumberOutOfRange:
        raise
    except InvalidJSON:
        return True, text
    if isinstance(decoded, bool):
        return True, decoded if named in _BOOLEAN_TYPES else text
    if isinstance(decoded, int | float):
        return True, decoded if named in _NUMBER_TYPES else text
    return True, text


def resolve_arguments(
    endpoint: Endpoint,
    path_values: Sequence[str],
    query: Sequence[tuple[str, str]],
    body: Mapping[str, Any] | None,
) -> RestArguments:
    """The variables of one call (400 ``bad-request`` for an unexpected or list-typed argument)."""
    seen: set[str] = set()
    for name, _ in query:
        if name in seen:
            raise BadRequest(f"Query parameter {name!r} given more than once")
        seen.add(name)
    # name -> (source, raw value); later sources override earlier ones (HashMap.fromList keeps the last).
    given: dict[str, tuple[str, Any]] = {}
    for name, text in query:
        if _NAME.fullmatch(name):
            given[name] = ("query", text)
    for name, value in (body or {}).items():
        if _NAME.fullmatch(name):
            given[name] = ("body", value)
    for name, text in zip(endpoint.params, path_values, strict=True):
        if _NAME.fullmatch(name):
            given[name] = ("path", text)
    declared = {definition.variable.name.value: definition for definition in endpoint.variables}
    for name in sorted(given):
        if name not in declared:
            raise BadRequest(f"Unexpected variable {name}")
    variables: dict[str, Any] = {}
    for name, (source, value) in given.items():
        if source == "body":
            variables[name] = value
            continue
        present, resolved = _from_text(name, value, declared[name].type)
        if present:
            variables[name] = resolved
    kept_query = tuple((name, text) for name, text in query if given.get(name, ("", None))[0] == "query")
    kept_body = {name: value for name, value in (body or {}).items() if given.get(name, ("", None))[0] == "body"}
    return RestArguments(variables=variables, query=kept_query, body=kept_body or None)


# --- validation ------------------------------------------------------------------------------------------

_QUERY_ROOT: Final = GraphQLObjectType("Query", {"_": GraphQLField(GraphQLString)})
_STUBS: dict[tuple[str, ...], GraphQLSchema] = {}


def _named_types(node: TypeNode) -> str:
    while isinstance(node, NonNullTypeNode | ListTypeNode):
        node = node.type
    assert isinstance(node, NamedTypeNode)
    return node.name.value


def _declared_schema(names: tuple[str, ...]) -> GraphQLSchema:
    """A schema knowing only the operation's types: built-in scalars as graphql-core defines them, every
    other name a scalar that accepts any value (its rules are Hasura's to apply)."""
    schema = _STUBS.get(names)
    if schema is None:
        types = [specified_scalar_types.get(name) or GraphQLScalarType(name) for name in names]
        schema = GraphQLSchema(query=_QUERY_ROOT, types=types)
        _STUBS[names] = schema
    return schema


def validation_schema(endpoint: Endpoint, schema: GraphQLSchema | None) -> GraphQLSchema:
    """Hasura's schema when it has every input type the operation names, else the declared types'."""
    names = tuple(sorted({_named_types(definition.type) for definition in endpoint.variables}))
    if schema is not None:
        types = [schema.get_type(name) for name in names]
        if all(found is not None and is_input_type(found) for found in types):
            return schema
    return _declared_schema(names)


def validate_variables(endpoint: Endpoint, variables: Mapping[str, Any], schema: GraphQLSchema | None) -> None:
    """400 ``validation-failed`` when a variable does not fit its declared type."""
    if endpoint.operation is None:
        return
    checked = validation_schema(endpoint, schema)
    result = get_variable_values(checked, endpoint.variables, dict(variables), max_errors=5)
    if isinstance(result, list):
        raise InvalidVariables("; ".join(error.message for error in result))


def json_schema(type_node: TypeNode, schema: GraphQLSchema | None) -> dict[str, Any]:
    """The JSON Schema of a GraphQL input type (the OpenAPI document's parameters and bodies)."""
    if isinstance(type_node, NonNullTypeNode):
        return json_schema(type_node.type, schema)
    if isinstance(type_node, ListTypeNode):
        return {"type": "array", "items": _nullable(type_node.type, schema)}
    assert isinstance(type_node, NamedTypeNode)
    return named_json_schema(type_node.name.value, schema)


def _nullable(type_node: TypeNode, schema: GraphQLSchema | None) -> dict[str, Any]:
    inner = json_schema(type_node, schema)
    if isinstance(type_node, NonNullTypeNode):
        return inner
    return {"anyOf": [inner, {"type": "null"}]}


_SCALARS: Final[dict[str, dict[str, Any]]] = {
    "Int": {"type": "integer", "format": "int32"},
    "Float": {"type": "number"},
    "String": {"type": "string"},
    "ID": {"type": "string"},
    "Boolean": {"type": "boolean"},
    "Bool": {"type": "boolean"},
    "uuid": {"type": "string", "format": "uuid"},
    "bigint": {"type": ["integer", "string"]},
    "numeric": {"type": ["number", "string"]},
    "float8": {"type": "number"},
    "timestamptz": {"type": "string", "format": "date-time"},
    "timestamp": {"type": "string"},
    "date": {"type": "string", "format": "date"},
    "jsonb": {},
    "json": {},
}


def named_json_schema(name: str, schema: GraphQLSchema | None) -> dict[str, Any]:
    """The JSON Schema of a named GraphQL scalar or enum (Hasura's scalars by name; others described)."""
    known = _SCALARS.get(name)
    if known is not None:
        return dict(known)
    found: GraphQLInputType | None = None
    if schema is not None:
        candidate = schema.get_type(name)
        if candidate is not None and is_input_type(candidate):
            found = candidate
    description = f"GraphQL type {name}"
    if found is None or isinstance(found, GraphQLScalarType):
        return {"description": description}
    values = getattr(found, "values", None)
    if isinstance(values, dict):  # an enum
        return {"type": "string", "enum": list(values), "description": description}
    return {"type": "object", "description": description}
