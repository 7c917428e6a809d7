"""RESTified endpoints (``/api/rest/<url>``) built from ``rest_endpoints`` and ``query_collections`` metadata.

Follows Hasura v2's source:

- Metadata (``buildEndpoint``/``resolveEndpoint`` and the endpoint checks of ``buildSchemaCacheRule`` in
  server/src-lib/Hasura/RQL/DDL/Schema/Cache.hs; ``EndpointMethod`` in server/src-lib/Hasura/RQL/Types/Endpoint.hs).
  Methods must be ``GET POST PUT DELETE PATCH`` (else the metadata does not parse: ``Method X not supported.``).
  An endpoint whose collection or query is missing, whose query is a subscription, or whose document is not
  exactly one typed operation is inconsistent and not served (``in endpoint <name>: query with name <q> is a
  subscription``, ``... has no definitions.``, ``... has multiple definitions.`` -- a ``{ ... }`` shorthand
  query counts as the latter). Duplicate ``:variables``, empty segments or ``:`` alone, and ambiguous URL
  templates are recorded as inconsistencies too, but those endpoints stay served.
- Routing (``Spock.hookRouteAll ("api" <//> "rest" <//> wildcard)`` in server/src-lib/Hasura/Server/App.hs, with
  Spock's router dropping empty path segments and WAI percent-decoding each one): every method reaches the
  handler; authentication comes first (``mkSpockAction``); then the method: ``GET POST PUT DELETE PATCH``, any
  other standard method 400 ``bad-request`` ``Method HEAD not supported.``, a non-standard one 400
  ``bad-request`` ``Nonstandard method not allowed for REST endpoints``. (A CORS preflight ``OPTIONS`` is
  answered earlier by Hasura's CORS middleware, which the double does not model.) The double's faults
  (``faults.py``) apply to these requests as to ``/v1/graphql``.
- Matching (``matchPath`` in server/src-lib/Hasura/RQL/Types/Endpoint/Trie.hs): the path after ``api/rest/`` is
  split on ``/``; a ``:name`` segment matches any one segment. No template matches: 404 ``not-found``
  ``Endpoint not found``; templates match but none for the method: 405 ``method-not-allowed``
  ``Allowed methods: GET, POST``; two endpoints match: 500 ``unexpected`` ``Multiple endpoints match request``.
- Variables (``runCustomEndpoint``/``resolveVar`` in server/src-lib/Hasura/Server/Rest.hs): query-string
  parameters (``&`` and ``;`` separate them, ``+`` is a space, a key without ``=`` has the value ``""``),
  then ``application/x-www-form-urlencoded`` body parameters, then the members of a JSON-object body (any
  other body is ignored), then the ``:name`` path segments; a later source wins for the same name. Names that
  are not GraphQL names are dropped. A name the operation does not declare: 400 ``bad-request``
  ``Unexpected variable <name>``. Text values (query string, form, path) are parsed against the declared type:
  a list type is 400 ``bad-request`` ``List variables are not currently supported in URL or Query parameters.
  (Variable <name>, with value "<text>")``; a ``Boolean`` given as an empty string is ``true``; an empty string
  for a nullable variable leaves it unset; text that is JSON ``true``/``false`` becomes a boolean for ``Bool``/
  ``Boolean``, JSON numbers become numbers for ``Int Float Number Double float8 numeric``, anything else is
  passed as the string. JSON-body values pass unchanged. Unset variables take their default, a missing
  non-nullable one is ``validation-failed`` ``expecting a value for non-nullable variable: "<name>"``.
- Response: the saved operation runs as a ``/v1/graphql`` request without ``operationName``; success is the
  ``data`` object without the envelope (``encodeHTTPResp`` in server/src-lib/Hasura/GraphQL/Transport/HTTP/
  Protocol.hs); request errors keep their status with the ``{"error","path","code"}`` body (``encodeQErr``).

Deliberate deviations: with several allowed methods (405) or several problems in one request, Hasura's order
comes from a hash map; the double lists methods in the order the metadata declares them and reports the
problem of the first variable by name. ``multipart/form-data`` bodies are not read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_plus

from graphql import (
    GraphQLError,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    TypeNode,
    VariableDefinitionNode,
    parse,
)

from .errors import HasuraError

__all__ = [
    "ENDPOINT_METHODS",
    "REST_PREFIX",
    "RestEndpoint",
    "RestEndpoints",
    "RestMetadataError",
    "rest_path",
]

REST_PREFIX = ("api", "rest")
ENDPOINT_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
# http-types' StdMethod constructors that are not endpoint methods (``Method HEAD not supported.``)
OTHER_STANDARD_METHODS = ("HEAD", "TRACE", "CONNECT", "OPTIONS")
BOOL_TYPES = frozenset({"Bool", "Boolean"})  # Hasura.Server.Name._Bool, GName._Boolean
NUMBER_TYPES = frozenset({"Int", "Float", "Number", "Double", "float8", "numeric"})
GRAPHQL_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
FORM_TYPE = "application/x-www-form-urlencoded"
_UNSET = object()


class RestMetadataError(ValueError):
    """``rest_endpoints``/``query_collections`` metadata that Hasura would refuse to parse."""


@dataclass(frozen=True)
class RestEndpoint:
    """A consistent endpoint: its template split on ``/`` and the one operation it runs."""

    name: str
    url: str
    methods: tuple[str, ...]
    query: str
    operation: OperationDefinitionNode = field(repr=False, compare=False)

    @property
    def segments(self) -> list[str]:
        return self.url.split("/")

    @property
    def path_variables(self) -> list[str]:
        """``parseVariableNames``: the ``:name`` segments, colon stripped, in order."""
        return [segment[1:] for segment in self.segments if segment.startswith(":")]


@dataclass
class _Node:
    children: dict[str | None, _Node] = field(default_factory=dict)  # None is the ``:param`` wildcard
    methods: dict[str, list[RestEndpoint]] = field(default_factory=dict)

    def merged(self, other: _Node) -> _Node:
        """The Trie semigroup: children merged recursively, method sets united."""
        result = _Node(dict(self.children), {m: list(v) for m, v in self.methods.items()})
        for key, child in other.children.items():
            result.children[key] = result.children[key].merged(child) if key in result.children else child
        for method, endpoints in other.methods.items():
            known = result.methods.setdefault(method, [])
            known += [e for e in endpoints if e not in known]
        return result


@dataclass(frozen=True)
class _Found:
    endpoint: RestEndpoint
    bindings: tuple[str, ...]


def _walk(node: _Node, segments: Sequence[str]) -> list[tuple[_Node, tuple[str, ...]]]:
    """``lookupPath``: every trie node the path reaches, with the segments bound by wildcards."""
    if not segments:
        return [(node, ())]
    head, rest = segments[0], segments[1:]
    found: list[tuple[_Node, tuple[str, ...]]] = []
    if head in node.children:
        found += _walk(node.children[head], rest)
    if None in node.children:
        found += [(n, (head, *bound)) for n, bound in _walk(node.children[None], rest)]
    return found


def _operations(query: str) -> list[Any]:
    try:
        return list(parse(query).definitions)
    except GraphQLError as error:
        raise RestMetadataError(f"not a valid graphql query: {error.message}") from None


class RestEndpoints:
    """The endpoint trie and the inconsistencies Hasura would report for the given metadata."""

    def __init__(self, rest_endpoints: Sequence[Mapping[str, Any]], query_collections: Sequence[Mapping[str, Any]]):
        self.inconsistencies: list[str] = []
        self.endpoints: list[RestEndpoint] = []
        collections = self._collections(query_collections)
        for raw in rest_endpoints or []:
            endpoint = self._resolve(raw, collections)
            if endpoint is not None:
                self.endpoints.append(endpoint)
        self._root = _Node()
        for endpoint in self.endpoints:
            self._insert(endpoint)
        # buildSchemaCacheRule's order: duplicate variables, then invalid segments, then ambiguous paths
        for endpoint in self.endpoints:
            variables = [s for s in endpoint.segments if s.startswith(":")]
            if len(set(variables)) != len(variables):
                self.inconsistencies.append(f"Duplicate variables found in endpoint path: {endpoint.url}")
        for endpoint in self.endpoints:
            if any(s in ("", ":") for s in endpoint.segments):
                self.inconsistencies.append(f"Empty segments or unnamed variables are not allowed: {endpoint.url}")
        for group in self._ambiguous(self._root):
            ordered = sorted(group, key=lambda e: e.name)  # S.elems: EndpointMetadata's Ord starts with the name
            self.inconsistencies.append("Ambiguous URL paths: " + ", ".join(e.url for e in ordered))

    # -- metadata --------------------------------------------------------------------------------------------

    @staticmethod
    def _collections(query_collections: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
        collections: dict[str, dict[str, str]] = {}
        for collection in query_collections or []:
            try:
                queries = collection["definition"]["queries"]
                collections[str(collection["name"])] = {str(q["name"]): str(q["query"]) for q in queries}
            except (KeyError, TypeError) as error:
                raise RestMetadataError(f"query collection without {error}") from None
        return collections

    def _resolve(self, raw: Mapping[str, Any], collections: dict[str, dict[str, str]]) -> RestEndpoint | None:
        try:
            name, url, methods = str(raw["name"]), raw["url"], raw["methods"]
            reference = raw["definition"]["query"]
            collection_name, query_name = str(reference["collection_name"]), str(reference["query_name"])
        except (KeyError, TypeError) as error:
            raise RestMetadataError(f"rest endpoint without {error}") from None
        if not isinstance(url, str) or not url:
            raise RestMetadataError("Endpoint url must be non-empty")
        if not isinstance(methods, list) or not methods:
            raise RestMetadataError(f"endpoint {name}: methods must be a non-empty list")
        for method in methods:
            if not isinstance(method, str):
                raise RestMetadataError("Only standard HTTP methods supported")
            if method not in ENDPOINT_METHODS:
                raise RestMetadataError(f"Method {method} not supported.")

        def inconsistent(reason: str) -> None:
            self.inconsistencies.append(f"Inconsistent object: in endpoint {name}: {reason}")

        if collection_name not in collections:
            inconsistent(f"collection with name {collection_name} does not exist")
            return None
        query = collections[collection_name].get(query_name)
        if query is None:
            inconsistent(f"query with name {query_name} does not exist in collection {collection_name}")
            return None
        definitions = _operations(query)
        if not definitions:
            inconsistent(f"query with name {query_name} has no definitions.")
            return None
        operation = definitions[0]
        typed = isinstance(operation, OperationDefinitionNode) and operation.loc is not None
        if typed and query[operation.loc.start : operation.loc.end].lstrip().startswith("{"):
            typed = False  # the ``{ ... }`` shorthand is OperationDefinitionUnTyped
        if len(definitions) != 1 or not typed:
            inconsistent(f"query with name {query_name} has multiple definitions.")
            return None
        if operation.operation is OperationType.SUBSCRIPTION:
            inconsistent(f"query with name {query_name} is a subscription")
            return None
        return RestEndpoint(name, url, tuple(dict.fromkeys(methods)), query, operation)

    def _insert(self, endpoint: RestEndpoint) -> None:
        node = self._root
        for segment in endpoint.segments:
            key = None if segment.startswith(":") else segment
            node = node.children.setdefault(key, _Node())
        for method in endpoint.methods:
            node.methods.setdefault(method, []).append(endpoint)

    def _ambiguous(self, node: _Node) -> list[list[RestEndpoint]]:
        """``ambiguousPaths``: a node is ambiguous when one method has two endpoints, once the wildcard
        subtree is merged into each literal sibling."""
        groups = [endpoints for endpoints in node.methods.values() if len(endpoints) >= 2]
        wildcard = node.children.get(None)
        for key, child in node.children.items():
            merged = child.merged(wildcard) if wildcard is not None and key is not None else child
            groups += self._ambiguous(merged)
        unique: list[list[RestEndpoint]] = []
        for group in groups:
            if group not in unique:
                unique.append(group)
        return unique

    # -- requests --------------------------------------------------------------------------------------------

    def match(self, method: str, path: str) -> tuple[RestEndpoint, dict[str, str]]:
        """``matchPath`` for ``path`` (after ``api/rest/``): the endpoint and its path variables, or the error."""
        found: _Found | None = None
        ambiguous = False
        allowed: list[str] = []
        for node, bindings in _walk(self._root, path.split("/")):
            endpoints = node.methods.get(method)
            if endpoints is not None and len(endpoints) == 1:
                if found is not None:
                    ambiguous = True
                found = _Found(endpoints[0], bindings)
            elif endpoints is not None:
                ambiguous = True
            else:
                allowed += list(node.methods)
        if ambiguous:
            raise HasuraError("Multiple endpoints match request", "unexpected", status=500)
        if found is not None:
            return found.endpoint, dict(zip(found.endpoint.path_variables, found.bindings, strict=True))
        if allowed:
            raise HasuraError("Allowed methods: " + ", ".join(allowed), "method-not-allowed", status=405)
        raise HasuraError("Endpoint not found", "not-found", status=404)

    def variables(
        self,
        endpoint: RestEndpoint,
        path_variables: Mapping[str, str],
        query_string: bytes,
        content_type: str | None,
        body: bytes,
    ) -> dict[str, Any]:
        """``runCustomEndpoint``'s variable resolution; raises ``bad-request`` errors."""
        provided: dict[str, tuple[bool, Any]] = {}  # name -> (is_text, value); later sources overwrite
        for key, value in parse_query(query_string):
            provided[key] = (True, value)
        if content_type is not None and content_type.split(";")[0].strip().lower() == FORM_TYPE:
            for key, value in parse_query(body):
                provided[key] = (True, value)
        for key, value in json_object_members(body):
            provided[key] = (False, value)
        for key, value in path_variables.items():
            provided[key] = (True, value)
        declared = {d.variable.name.value: d for d in endpoint.operation.variable_definitions or ()}
        resolved: dict[str, Any] = {}
        for name in sorted(set(declared) | {k for k in provided if GRAPHQL_NAME.match(k)}):
            if name not in provided:
                continue
            if name not in declared:
                raise HasuraError(f"Unexpected variable {name}", "bad-request")
            is_text, value = provided[name]
            if is_text:
                value = _from_text(name, declared[name], value)
            if value is not _UNSET:
                resolved[name] = value
        return resolved


def _from_text(name: str, definition: VariableDefinitionNode, text: str) -> Any:
    """``resolveVar`` for a value given as text (query string, form body or URL segment)."""
    type_node: TypeNode = definition.type
    nullable = not isinstance(type_node, NonNullTypeNode)
    if isinstance(type_node, NonNullTypeNode):
        type_node = type_node.type
    if isinstance(type_node, ListTypeNode):
        raise HasuraError(
            "List variables are not currently supported in URL or Query parameters. "
            f"(Variable {name}, with value {haskell_show(text)})",
            "bad-request",
        )
    assert isinstance(type_node, NamedTypeNode)
    type_name = type_node.name.value
    if type_name == "Boolean" and text == "":
        return True
    if nullable and text == "":
        return _UNSET
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text
    if isinstance(value, bool):
        return value if type_name in BOOL_TYPES else text
    if isinstance(value, int | float):
        return value if type_name in NUMBER_TYPES else text
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_query(raw: bytes) -> list[tuple[str, str]]:
    """http-types ``parseQuery`` as WAI applies it: ``&`` and ``;`` separate pairs, ``+`` is a space, percent
    escapes are decoded (UTF-8), a key without ``=`` has the value ``""``."""
    text = raw.decode("latin-1")
    if text.startswith("?"):
        text = text[1:]
    pairs: list[tuple[str, str]] = []
    for piece in re.split(r"[&;]", text) if text else []:
        key, sep, value = piece.partition("=")
        pairs.append((_decode(key), _decode(value) if sep else ""))
    return pairs


def _decode(text: str) -> str:
    return unquote_plus(text.encode("latin-1").decode("utf-8", errors="replace"), errors="replace")


def json_object_members(body: bytes) -> list[tuple[str, Any]]:
    """The members of a JSON-object body; any other body (empty, invalid JSON, array, scalar) gives none."""
    try:
        value = json.loads(body, parse_constant=_reject_constant) if body.strip() else None
    except ValueError:
        return []
    return list(value.items()) if isinstance(value, dict) else []


def rest_path(raw_path: bytes | str) -> str | None:
    """The wildcard after ``/api/rest`` (segments percent-decoded, empty ones dropped, joined with ``/``), or
    ``None`` when the request path is not under ``/api/rest``."""
    text = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    pieces = [
        unquote(piece.encode("latin-1").decode("utf-8", errors="replace"), errors="replace")
        for piece in text.split("/")
        if piece
    ]
    pieces = [piece for piece in pieces if piece]
    if tuple(pieces[: len(REST_PREFIX)]) != REST_PREFIX:
        return None
    return "/".join(pieces[len(REST_PREFIX) :])


_HASKELL_CONTROL = [
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "a", "b", "t", "n", "v", "f", "r", "SO", "SI",
    "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US",
]  # fmt: skip


def haskell_show(text: str) -> str:
    """Haskell's ``show`` of a ``Text`` (``tshow``): quoted, with Haskell escapes."""
    out = ['"']
    previous = ""
    for char in text:
        code = ord(char)
        if (previous == "numeric" and char.isdigit() and code < 128) or (previous == "SO" and char == "H"):
            out.append("\\&")  # the empty escape: a numeric escape before a digit, SO before H
        previous = ""
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif code < 32:
            out.append("\\" + _HASKELL_CONTROL[code])
            previous = _HASKELL_CONTROL[code]
        elif code == 127:
            out.append("\\DEL")
        elif code > 127:
            out.append(f"\\{code}")
            previous = "numeric"
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
