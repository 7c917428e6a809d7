"""Hasura's RESTified endpoints, read from the metadata directory and matched the way Hasura matches them.

``RestEndpoints.from_metadata_dir(path)`` reads ``rest_endpoints.yaml`` (``{name, url, methods,
definition: {query: {collection_name, query_name}}, comment}``) and ``query_collections.yaml``
(``{name, definition: {queries: [{name, query}]}}``), following ``!include`` as the Hasura CLI does
(``edge.graphql.permissions``). Each endpoint keeps its saved operation, parsed once.

Matching follows ``matchPath`` in Hasura's ``server/src-lib/Hasura/RQL/Types/Endpoint/Trie.hs``: the
path after ``/api/rest/`` is split on ``/``; a ``:name`` segment of an endpoint's URL matches any
segment, every other segment only itself. Endpoints whose URLs have the same shape (the same literals
at the same places) share one node of Hasura's trie, whose methods are the union of theirs. Every node
the path reaches gives a result, and the results combine as a lattice:

- the method is served by exactly one endpoint of the node: found (with the values of the ``:name``
  segments); by two or more: ambiguous;
- the node has endpoints, none for this method: "missing method", with the node's methods;
- two found results are ambiguous; found beats "missing method"; the methods of several "missing
  method" results are united; nothing reached is "not found".

Hasura answers them (``runCustomEndpoint`` in ``server/src-lib/Hasura/Server/Rest.hs``): 404
``Endpoint not found``, 405 ``Allowed methods: GET, POST``, 500 ``Multiple endpoints match request``.

Metadata Hasura cannot parse (an endpoint without a name, an URL or a method, a method other than GET,
POST, PUT, PATCH and DELETE: ``EndpointMethod``'s ``FromJSON`` in ``Endpoint.hs``) is a
:class:`MetadataError`: the edge does not start, as Hasura refuses it. What Hasura reports as
inconsistent and does not serve is left out here and logged (``rest_endpoint_skipped``), so it answers
404 as it does at Hasura (the endpoint checks of ``buildSchemaCacheRule`` in
``server/src-lib/Hasura/RQL/DDL/Schema/Cache.hs``): a query missing from its collection, a saved query
that is not exactly one operation written with its keyword (a fragment, two operations, a shorthand
``{ ... }``), a subscription.
What Hasura reports but still serves is served: an URL with an empty segment (it never matches: the
router drops empty segments of a request), a ``:`` without a name, a repeated ``:name``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from graphql import GraphQLError, OperationDefinitionNode, OperationType, VariableDefinitionNode, parse

from edge.graphql.permissions import MetadataError, read_metadata_file

__all__ = ["METHODS", "Endpoint", "Match", "RestEndpoints"]

log = logging.getLogger("edge.rest")

METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
"""The methods an endpoint may list (``EndpointMethod``'s ``FromJSON`` in Hasura's ``Endpoint.hs``)."""
_MAX_TOKENS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST endpoint and the saved operation behind it."""

    name: str
    url: str
    methods: tuple[str, ...]
    query: str
    """The saved query's text, as Hasura runs it."""
    collection: str
    query_name: str
    comment: str | None = None
    segments: tuple[str | None, ...] = ()
    """Per URL segment: its literal text, or None for a ``:name`` parameter."""
    params: tuple[str, ...] = ()
    """The names of the ``:name`` segments, in order."""
    operation: OperationDefinitionNode | None = None
    """The one operation of the saved query (set for every endpoint :func:`endpoint_from_metadata` makes)."""

    @property
    def operation_type(self) -> str:
        return self.operation.operation.value if self.operation is not None else "query"

    @property
    def variables(self) -> tuple[VariableDefinitionNode, ...]:
        return tuple(self.operation.variable_definitions or ()) if self.operation is not None else ()

    @property
    def shape(self) -> tuple[str | None, ...]:
        """The node of Hasura's trie this endpoint lives in: its literals, None for every parameter."""
        return self.segments


MatchKind = Literal["found", "not-found", "method-not-allowed", "ambiguous"]


@dataclass(frozen=True, slots=True)
class Match:
    """What a request path and method matched: ``found`` (``endpoint``, ``values`` of its parameters),
    ``not-found``, ``method-not-allowed`` (``allowed``: the methods that path has), ``ambiguous``."""

    kind: MatchKind
    endpoint: Endpoint | None = None
    values: tuple[str, ...] = ()
    allowed: tuple[str, ...] = field(default=())


_NOT_FOUND: Final = Match("not-found")
_AMBIGUOUS: Final = Match("ambiguous")


def _join(left: Match, right: Match) -> Match:
    """The least upper bound of two results (``MatchResult``'s ``Semigroup`` in Hasura's ``Trie.hs``)."""
    if left.kind == "ambiguous" or right.kind == "ambiguous":
        return _AMBIGUOUS
    if left.kind == "found" and right.kind == "found":
        return _AMBIGUOUS
    if left.kind == "found":
        return left
    if right.kind == "found":
        return right
    if left.kind == "method-not-allowed" and right.kind == "method-not-allowed":
        return Match("method-not-allowed", allowed=tuple(sorted({*left.allowed, *right.allowed})))
    return right if left.kind == "not-found" else left


class RestEndpoints:
    """The endpoints of one metadata directory, indexed by their number of segments."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self.endpoints: tuple[Endpoint, ...] = tuple(endpoints)
        # number of segments -> trie node (shape) -> method -> the endpoints serving it there
        self._nodes: dict[int, dict[tuple[str | None, ...], dict[str, list[Endpoint]]]] = {}
        for endpoint in self.endpoints:
            node = self._nodes.setdefault(len(endpoint.segments), {}).setdefault(endpoint.shape, {})
            for method in endpoint.methods:
                node.setdefault(method, []).append(endpoint)

    def __len__(self) -> int:
        return len(self.endpoints)

    def match(self, method: str, segments: Sequence[str]) -> Match:
        """Match the path after ``/api/rest/`` (already split on ``/`` and percent-decoded)."""
        result = _NOT_FOUND
        for shape, methods in self._nodes.get(len(segments), {}).items():
            if not all(literal is None or literal == segment for literal, segment in zip(shape, segments, strict=True)):
                continue
            serving = methods.get(method)
            if serving is None:
                found = Match("method-not-allowed", allowed=tuple(sorted(methods)))
            elif len(serving) > 1:
                found = _AMBIGUOUS
            else:
                values = tuple(segment for literal, segment in zip(shape, segments, strict=True) if literal is None)
                found = Match("found", endpoint=serving[0], values=values)
            result = _join(result, found)
        return result

    @classmethod
    def from_metadata_dir(cls, directory: str | Path) -> RestEndpoints:
        """Raises :class:`MetadataError` when a file cannot be read or is not a list; an endpoint Hasura
        would refuse is logged (``rest_endpoint_skipped``) and left out."""
        base = Path(directory)
        endpoints_file = base / "rest_endpoints.yaml"
        if not endpoints_file.exists():
            return cls(())
        try:
            declared = _list(read_metadata_file(endpoints_file), endpoints_file)
            collections_file = base / "query_collections.yaml"
            collections = (
                _list(read_metadata_file(collections_file), collections_file) if collections_file.exists() else []
            )
            queries = _queries(collections, collections_file)
        except MetadataError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MetadataError(f"{base}: unexpected metadata ({type(exc).__name__}: {exc})") from None
        endpoints: list[Endpoint] = []
        for entry in declared:
            try:
                endpoints.append(endpoint_from_metadata(entry, queries))
            except MetadataError as exc:  # Hasura cannot parse the metadata at all: neither does the edge
                raise MetadataError(f"{endpoints_file}: {exc}") from None
            except ValueError as exc:
                name = entry.get("name") if isinstance(entry, Mapping) else None
                log.warning("rest_endpoint_skipped", extra={"endpoint": name, "reason": str(exc)})
        return cls(endpoints)


def _list(value: Any, path: Path) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MetadataError(f"{path}: expected a list")
    return value


def _queries(collections: list[Any], path: Path) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for collection in collections:
        if not isinstance(collection, Mapping) or not isinstance(collection.get("name"), str):
            raise MetadataError(f"{path}: a collection without a name")
        for item in (collection.get("definition") or {}).get("queries") or []:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str) and isinstance(item.get("query"), str):
                found[(collection["name"], item["name"])] = item["query"]
    return found


def split_url(url: str) -> tuple[tuple[str | None, ...], tuple[str, ...]]:
    """(segments, parameter names) of an endpoint URL (``splitPath`` in Hasura's ``Endpoint.hs``)."""
    segments: list[str | None] = []
    params: list[str] = []
    for part in url.split("/"):
        if part.startswith(":"):
            params.append(part[1:])
            segments.append(None)
        else:
            segments.append(part)
    return tuple(segments), tuple(params)


def endpoint_from_metadata(entry: Any, queries: Mapping[tuple[str, str], str]) -> Endpoint:
    """One ``rest_endpoints.yaml`` entry. :class:`MetadataError` where Hasura cannot parse it (its metadata is
    then refused whole), ValueError where Hasura reports the endpoint as inconsistent and does not serve it."""
    if not isinstance(entry, Mapping):
        raise MetadataError("an endpoint is not a mapping")
    name, url, methods = entry.get("name"), entry.get("url"), entry.get("methods")
    if not isinstance(name, str) or not name:
        raise MetadataError("an endpoint without a name")
    if not isinstance(url, str) or not url:
        raise MetadataError(f"endpoint {name}: Endpoint url must be non-empty")
    if not isinstance(methods, list) or not methods:
        raise MetadataError(f"endpoint {name}: at least one method is needed")
    for method in methods:
        if method not in METHODS:
            raise MetadataError(f"endpoint {name}: Method {method} not supported.")
    reference = ((entry.get("definition") or {}).get("query")) or {}
    collection, query_name = reference.get("collection_name"), reference.get("query_name")
    query = queries.get((str(collection), str(query_name)))
    if query is None:
        raise ValueError(f"query with name {query_name} not found in collection {collection}")
    segments, params = split_url(url)
    if "" in segments or "" in params or len(set(params)) < len(params):
        # Hasura reports these and serves the endpoint all the same.
        log.warning("rest_endpoint_url_inconsistent", extra={"endpoint": name, "url": url})
    operation = _operation(query, str(query_name))
    if operation.operation is OperationType.SUBSCRIPTION:
        raise ValueError(f"query with name {query_name} is a subscription")
    comment = entry.get("comment")
    return Endpoint(
        name=name,
        url=url,
        methods=tuple(dict.fromkeys(str(method) for method in methods)),
        query=query,
        collection=str(collection),
        query_name=str(query_name),
        comment=comment if isinstance(comment, str) else None,
        segments=segments,
        params=params,
        operation=operation,
    )


def _operation(query: str, query_name: str) -> OperationDefinitionNode:
    try:
        document = parse(query, no_location=True, max_tokens=_MAX_TOKENS)
    except (GraphQLError, RecursionError) as exc:
        raise ValueError(f"the saved query does not parse: {exc}") from None
    definitions = document.definitions
    # Hasura's ``OperationDefinitionTyped``: written with its keyword (``query``, ``mutation``...).
    if len(definitions) == 1 and isinstance(definitions[0], OperationDefinitionNode) and _typed(query):
        return definitions[0]
    raise ValueError(f"query with name {query_name} has multiple definitions.")


def _typed(query: str) -> bool:
    """False for the shorthand ``{ ... }`` form, which Hasura's parser reads as an untyped operation."""
    first = query.lstrip(" \t\r\n,\ufeff")
    while first.startswith("#"):
        first = first.partition("\n")[2].lstrip(" \t\r\n,\ufeff")
    return not first.startswith("{")
