"""The OpenAPI 3.1 document of the REST surface, served at ``/api/openapi.json``.

Generated from the metadata's endpoints and Hasura's introspected schema (rebuilt when the schema
changes): one path per endpoint URL (``:id`` becomes ``{id}``), one operation per method, the URL's
parameters as path parameters, the other variables as query parameters (GET and DELETE; variables of a
list or input-object type, which Hasura reads only from a body, in the JSON body) or as the JSON body
(POST, PUT, PATCH), each with the JSON Schema of its GraphQL type; the answers (200 typed from the
operation's selection over the schema, and the edge's and Hasura's errors); and the credentials this
edge accepts (a bearer JWT, an ``X-API-Key``, none when an unauthorized role is configured). It is
served to the callers the edge authenticates (401 otherwise, as for the endpoints).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import orjson
from graphql import (
    FieldNode,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    SelectionSetNode,
    TypeNode,
    VariableDefinitionNode,
)

from edge.asgi import Receive, Scope, Send, asgi_client, send_response
from edge.context import RequestContext
from edge.errors import EdgeError
from edge.http.request_id import choose_request_id
from edge.rest.endpoints import Endpoint
from edge.rest.variables import json_schema, named_json_schema

if TYPE_CHECKING:
    from edge.rest.handler import RestHandler

__all__ = ["OPENAPI_PATH", "OpenAPIDocument", "openapi_document"]

OPENAPI_PATH: Final = "/api/openapi.json"
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})

_EDGE_ERROR: Final = {
    "type": "object",
    "description": "An error the edge answers itself (docs/errors.md): its code is in extensions.code.",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "extensions": {"type": "object", "properties": {"code": {"type": "string"}}},
                },
                "required": ["message"],
            },
        }
    },
    "required": ["errors"],
}
_HASURA_ERROR: Final = {
    "type": "object",
    "description": "Hasura's error body on its REST endpoints.",
    "properties": {"error": {"type": "string"}, "path": {"type": "string"}, "code": {"type": "string"}},
    "required": ["error", "code"],
}


def _error(description: str, schema: str = "EdgeError") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _is_scalar_typed(node: TypeNode) -> bool:
    """A variable Hasura can read from a query string (not a list; an input object is not known here)."""
    if isinstance(node, NonNullTypeNode):
        node = node.type
    return isinstance(node, NamedTypeNode)


def _required(node: TypeNode, has_default: bool) -> bool:
    return isinstance(node, NonNullTypeNode) and not has_default


def _operation(
    endpoint: Endpoint, method: str, schema: GraphQLSchema | None, security: list[dict[str, list[str]]]
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    body_properties: dict[str, Any] = {}
    body_required: list[str] = []
    in_path = set(endpoint.params)
    for definition in endpoint.variables:
        name = definition.variable.name.value
        variable_schema = json_schema(definition.type, schema)
        if definition.default_value is not None:
            variable_schema = {**variable_schema, "description": "Has a default in the operation"}
        required = _required(definition.type, definition.default_value is not None)
        if name in in_path:
            parameters.append({"name": name, "in": "path", "required": True, "schema": variable_schema})
        elif method not in _BODY_METHODS and _is_scalar_typed(definition.type) and _is_input_scalar(definition, schema):
            parameters.append({"name": name, "in": "query", "required": required, "schema": variable_schema})
        else:
            body_properties[name] = variable_schema
            if required:
                body_required.append(name)
    for name in endpoint.params:
        if name not in {definition.variable.name.value for definition in endpoint.variables}:
            # Hasura refuses the call ("Unexpected variable"): documented as the string it is.
            parameters.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.name}_{method.lower()}",
        "summary": endpoint.comment or endpoint.name,
        "description": (
            f"Runs the {endpoint.operation_type} {endpoint.query_name!r} of the query collection "
            f"{endpoint.collection!r}."
        ),
        "tags": [endpoint.collection],
        "responses": {
            "200": {
                "description": "The operation's root fields (Hasura's data, without a data envelope); "
                "extensions.cost when the plan has a cost budget.",
                "content": {"application/json": {"schema": response_schema(endpoint, schema)}},
            },
            "400": _error("The request or its variables are invalid (extensions.code), or Hasura refused them."),
            "401": _error("Missing or invalid credentials."),
            "403": _error("The role is not allowed (by the token or the usage plan)."),
            "404": _error("No endpoint at this path.", "HasuraError"),
            "405": _error("The path has no endpoint for this method (Allow lists those it has).", "HasuraError"),
            "429": _error("Rate limit, quota or cost budget used up (Retry-After, RateLimit headers)."),
        },
        "security": security,
    }
    if parameters:
        operation["parameters"] = parameters
    if body_properties:
        body_schema: dict[str, Any] = {"type": "object", "properties": body_properties, "additionalProperties": False}
        if body_required:
            body_schema["required"] = body_required
        operation["requestBody"] = {
            "required": bool(body_required),
            "content": {"application/json": {"schema": body_schema}},
        }
    return operation


def _is_input_scalar(definition: VariableDefinitionNode, schema: GraphQLSchema | None) -> bool:
    node: TypeNode = definition.type
    while isinstance(node, NonNullTypeNode | ListTypeNode):
        node = node.type
    if schema is None or not isinstance(node, NamedTypeNode):
        return True
    return not isinstance(schema.get_type(node.name.value), GraphQLInputObjectType)


def response_schema(endpoint: Endpoint, schema: GraphQLSchema | None) -> dict[str, Any]:
    """The JSON Schema of a 200: the operation's selection over Hasura's schema (an object of the root
    fields, by alias); ``{"type": "object"}`` when the schema is not known."""
    operation = endpoint.operation
    root = schema.get_root_type(operation.operation) if schema is not None and operation is not None else None
    if schema is None or operation is None or root is None:
        return {"type": "object"}
    return _selection_schema(root, operation.selection_set, schema)


def _selection_schema(
    parent: GraphQLObjectType | GraphQLInterfaceType, selection_set: SelectionSetNode, schema: GraphQLSchema
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode):
            continue  # fragments: their fields depend on the runtime type
        name = selection.name.value
        key = selection.alias.value if selection.alias is not None else name
        if name == "__typename":
            properties[key] = {"type": "string"}
            continue
        field = parent.fields.get(name)
        properties[key] = _output_schema(field.type, selection, schema) if field is not None else {}
    return {"type": "object", "properties": properties}


def _output_schema(output: GraphQLOutputType, selection: FieldNode, schema: GraphQLSchema) -> dict[str, Any]:
    """A field's value: its type's schema, or null unless the type is non-null."""
    if isinstance(output, GraphQLNonNull):
        return _value_schema(output.of_type, selection, schema)
    return {"anyOf": [_value_schema(output, selection, schema), {"type": "null"}]}


def _value_schema(output: Any, selection: FieldNode, schema: GraphQLSchema) -> dict[str, Any]:
    if isinstance(output, GraphQLList):
        return {"type": "array", "items": _output_schema(output.of_type, selection, schema)}
    if isinstance(output, GraphQLObjectType | GraphQLInterfaceType):
        if selection.selection_set is None:
            return {"type": "object"}
        return _selection_schema(output, selection.selection_set, schema)
    if isinstance(output, GraphQLNamedType):
        return named_json_schema(output.name, schema)
    return {}


def openapi_path(endpoint: Endpoint) -> str:
    """``users/:id`` -> ``/api/rest/users/{id}``."""
    segments = []
    params = iter(endpoint.params)
    for literal in endpoint.segments:
        segments.append(literal if literal is not None else f"{{{next(params)}}}")
    return "/api/rest/" + "/".join(segments)


def openapi_document(
    endpoints: tuple[Endpoint, ...],
    schema: GraphQLSchema | None,
    *,
    bearer: bool = True,
    api_key: bool = True,
    anonymous: bool = False,
) -> dict[str, Any]:
    """The document (a JSON-ready dict) for these endpoints."""
    schemes: dict[str, Any] = {}
    security: list[dict[str, list[str]]] = []
    if bearer:
        schemes["bearerAuth"] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        security.append({"bearerAuth": []})
    if api_key:
        schemes["apiKey"] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        security.append({"apiKey": []})
    if anonymous or not security:
        security.append({})
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        item = paths.setdefault(openapi_path(endpoint), {})
        for method in endpoint.methods:
            item[method.lower()] = _operation(endpoint, method, schema, security)
    components: dict[str, Any] = {"schemas": {"EdgeError": _EDGE_ERROR, "HasuraError": _HASURA_ERROR}}
    if schemes:
        components["securitySchemes"] = schemes
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "REST endpoints",
            "version": "1",
            "description": "Hasura's RESTified endpoints, served through the edge (docs/rest.md).",
        },
        "paths": paths,
        "components": components,
    }


class OpenAPIDocument:
    """``GET /api/openapi.json``: the document, rebuilt when Hasura's schema changes."""

    def __init__(self, handler: RestHandler) -> None:
        self.handler = handler
        authenticate = handler.authenticate
        self.bearer = authenticate.verifier is not None or authenticate.authorizer is not None
        self.api_key = authenticate.api_keys is not None
        self.anonymous = authenticate.unauthorized is not None
        self._built: tuple[GraphQLSchema | None, bytes] | None = None

    def body(self) -> bytes:
        schema = self.handler.schema
        built = self._built
        if built is None or built[0] is not schema:
            document = openapi_document(
                self.handler.endpoints.endpoints,
                schema,
                bearer=self.bearer,
                api_key=self.api_key,
                anonymous=self.anonymous,
            )
            built = (schema, orjson.dumps(document))
            self._built = built
        return built[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # For the callers the edge authenticates, as the endpoints are (Hasura's own /api/swagger/json is
        # for its admin role only, which no client of the edge has).
        headers = [(bytes(name), bytes(value)) for name, value in scope["headers"]]
        ctx = RequestContext(
            method=scope["method"], headers=headers, query_string=b"", client=asgi_client(scope), request_id=""
        )
        ctx.request_id = choose_request_id(ctx.first_values.get(b"x-request-id"))
        ctx.origin = ctx.first_values.get(b"origin")
        try:
            await self.handler.authenticate(ctx)
        except EdgeError as error:
            await self.handler.send_error(ctx, send, error)
            return
        if scope["method"] not in ("GET", "HEAD"):
            body = orjson.dumps({"error": "Allowed methods: GET", "path": "$", "code": "method-not-allowed"})
            headers = [(b"content-type", b"application/json"), (b"allow", b"GET")]
            await send_response(send, 405, headers, body)
            return
        body = self.body()
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-cache")]
        await send_response(send, 200, headers, b"" if scope["method"] == "HEAD" else body)
