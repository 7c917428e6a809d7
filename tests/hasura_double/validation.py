"""Turn graphql-core validation and coercion errors into Hasura's ``validation-failed`` errors.

Hasura's texts and JSON paths come from its schema parsers (``Hasura.GraphQL.Parser.Internal.Parser`` and
``.Input`` in hasura/graphql-engine): ``field 'x' not found in type: 'query_root'`` at
``$.selectionSet.x``; ``'users' has no argument named 'y'``; ``missing required field 'id'`` at
``...args.id``; ``missing selection set for 'users'``; ``unexpected subselection set for non-object field``;
and (``Execute/Resolve``) ``expecting a value for non-nullable variable: "id"`` at ``$``. Other graphql-core
errors keep graphql-core's text. graphql-js style "Did you mean ...?" suggestions are removed (Hasura never
emits them) unless the double was built with ``field_suggestions=True``, in which case they are appended to
the Hasura text so the edge's suggestion stripping can be tested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
)

from .errors import HasuraError

__all__ = ["NodePaths", "hasura_error_for", "node_paths"]

NodePaths = dict[int, str]

SUGGESTION = re.compile(r"\s*Did you mean .*\?\s*$")
UNKNOWN_FIELD = re.compile(r"^Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'\.")
UNKNOWN_ARGUMENT = re.compile(r"^Unknown argument '(?P<arg>\w+)' on field '\w+\.(?P<field>\w+)'\.")
MISSING_SUBSELECTION = re.compile(r"^Field '(?P<field>\w+)' of type '[\[\]!]*(?P<type>\w+)[\[\]!]*' must have a")
UNEXPECTED_SUBSELECTION = re.compile(r"^Field '\w+' must not have a selection since type")
MISSING_ARGUMENT = re.compile(r"^Argument '[\w.]+\((?P<arg>\w+):\)' of type '.*' is required, but it was not")
MISSING_VARIABLE = re.compile(
    r"^Variable '\$(?P<var>\w+)' (of required type '.*' was not provided|"
    r"has invalid value: Expected a value of non-null type '.*' to be provided)\.$"
)


def node_paths(document: DocumentNode) -> NodePaths:
    """Map ``id(node)`` of fields, arguments and argument values to Hasura JSON paths
    (``$.selectionSet.users.args.where.id._eq``); fragments are inlined as Hasura does."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    paths: NodePaths = {}

    def walk_value(value: ValueNode, path: str) -> None:
        paths.setdefault(id(value), path)
        if isinstance(value, ObjectValueNode):
            for object_field in value.fields:
                paths.setdefault(id(object_field), f"{path}.{object_field.name.value}")
                walk_value(object_field.value, f"{path}.{object_field.name.value}")
        elif isinstance(value, ListValueNode):
            for index, item in enumerate(value.values):
                walk_value(item, f"{path}[{index}]")

    def walk(selection_set: SelectionSetNode | None, prefix: str, seen: frozenset[str]) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                path = f"{prefix}.selectionSet.{selection.name.value}"
                paths.setdefault(id(selection), path)
                for arg in selection.arguments or ():
                    paths.setdefault(id(arg), path)
                    walk_value(arg.value, f"{path}.args.{arg.name.value}")
                if selection.selection_set is not None:
                    # graphql-core reports a selection on a leaf field at the selection set node
                    paths.setdefault(id(selection.selection_set), path)
                walk(selection.selection_set, path, seen)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, prefix, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    walk(fragments[name].selection_set, prefix, seen | {name})

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            walk(definition.selection_set, "$", frozenset())
    return paths


def _path_of(nodes: Iterable[Node] | None, paths: NodePaths, suffix: str = "") -> str:
    for node in nodes or ():
        if id(node) in paths:
            return paths[id(node)] + suffix
    return "$"


def hasura_error_for(error: GraphQLError, paths: NodePaths, *, suggestions: bool) -> HasuraError:
    """The Hasura ``validation-failed`` error for one graphql-core error (see module docstring)."""
    text = error.message
    hint = SUGGESTION.search(text)
    tail = ". " + hint.group(0).strip() if (hint and suggestions) else ""
    bare = SUGGESTION.sub("", text)
    nodes = error.nodes
    message, path = bare, _path_of(nodes, paths)
    if match := UNKNOWN_FIELD.match(text):
        message = f"field '{match['field']}' not found in type: '{match['type']}'"
    elif match := UNKNOWN_ARGUMENT.match(text):
        # the argument node maps to its field's path, where Hasura reports this error
        message = f"'{match['field']}' has no argument named '{match['arg']}'"
    elif match := MISSING_SUBSELECTION.match(text):
        message = f"missing selection set for '{match['type']}'"
        path = _path_of(nodes, paths, ".selectionSet")
    elif UNEXPECTED_SUBSELECTION.match(text):
        message = "unexpected subselection set for non-object field"
    elif match := MISSING_ARGUMENT.match(text):
        message = f"missing required field '{match['arg']}'"
        path = _path_of(nodes, paths, f".args.{match['arg']}")
    elif match := MISSING_VARIABLE.match(text):
        message, path = f'expecting a value for non-nullable variable: "{match["var"]}"', "$"
    return HasuraError(message + tail, "validation-failed", path=path)
