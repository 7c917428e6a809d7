"""One bounded pass over a GraphQL document: the facts every limit and the cost model need.

``analyse(query, operation_name, max_tokens=...)`` parses the document (bounded by a token limit
and a nesting pre-scan), selects the operation the way Hasura does, and walks it **once**, with an
explicit stack, fragments inlined, into an immutable :class:`OperationAnalysis`. Results are kept
in a bounded LRU keyed by ``(query, operation_name, max_tokens)``: a repeated operation costs a
dict lookup instead of a parse (``docs/benchmarks.md``, "Operation analysis"). Errors are cached too
(a repeated bad document is re-raised from the cache without parsing it again).

Depth follows Hasura's API-limit semantics (``docs/docs/security/api-limits.mdx`` in
hasura/graphql-engine): a root field is at depth 0 and each field nested in a field's selection set
is one deeper; fragments and inline fragments add nothing. The depth of an operation is the
deepest field's depth::

    { __typename }                                   # depth 0
    query deep1_1 { viewer { name } }                # depth 1
    query deep1_2 { viewer { ... on User { name } } }   # depth 1
    query deep2 { viewer { albums { title } } }      # depth 2
    query deep3 { viewer { albums { ...musicInfo songs { ...musicInfo } } } }
    fragment musicInfo on Music { id title artists } # deep3: depth 3

Like Hasura ("depth limits are not applied to introspection queries"), fields inside
``__schema``/``__type`` do not count towards ``depth``; their depth, measured the same way, is reported
as ``introspection_depth`` (``{ __schema { types { name } } }`` is 2). The policy bounds it with a fixed
cap that fits the standard introspection query (14), so a circular introspection query is still refused.

Hard bounds, checked whatever the plan's limits say (they make every document a quick 400, never
a ``RecursionError``, a 500 or a hang):

- ``max_tokens`` (the plan's): more tokens (comments count, as in graphql-core) ->
  :class:`TokenLimitExceeded` (``token-limit-exceeded``). A regex counts them before parsing, so a
  token flood is refused without being parsed; the parser's own limit stays as a backstop.
- :data:`MAX_NESTING` braces/brackets: a document nested deeper is refused before parsing with
  ``depth-limit-exceeded``. graphql-core's parser is recursive (3.3 stops at 200 levels itself,
  3.2 would raise ``RecursionError``, which is also caught).
- ``max_nodes`` (:data:`MAX_NODES` by default) selections visited with fragments expanded: a document
  small in tokens can expand exponentially through fragments (20 fragments each spreading the
  previous one twice is a million fields). The walk stops at the cap and refuses the operation with
  ``operation-too-complex``; the cost model never sees it.
- Fragment spreads forming a cycle, unknown fragments and duplicate fragment names are invalid
  GraphQL (the spec's validation rules; Hasura refuses them too): :class:`InvalidDocument`
  (``validation-failed``). Cycles are found on the fragment graph before expanding anything.

Counts (see :class:`OperationAnalysis`): ``aliases``, ``root_fields``, ``field_count`` and ``nodes``
are counted on the *expanded* operation, so a fragment spread twice counts twice (what the server
executes); ``directives`` is counted on the document text as written, every definition included, and
``duplicate_directives`` counts directives repeated at one location (``__typename @aa@aa@aa``).

The cost *plan* (:class:`PlanField` tree) merges fields with the same response key the way GraphQL
execution does (``{ users { id } users { name } }`` is one ``users`` selection, so 500 copies of a
field cost what one does) and records, per field, where a row multiplier would come from: a literal
``limit``, a variable, or nothing. :mod:`edge.graphql.cost` prices it per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionNode,
    VariableNode,
    parse,
)
from graphql.language import ValueNode

from edge.errors import BadRequest
from edge.graphql.operation import InvalidDocument

__all__ = [
    "INTROSPECTION_FIELDS",
    "LIST_ARGUMENTS",
    "MAX_NESTING",
    "MAX_NODES",
    "ROW_LIMIT_ARGUMENTS",
    "Analyser",
    "Arg",
    "OperationAnalysis",
    "OperationTooComplex",
    "PlanField",
    "TokenLimitExceeded",
    "analyse",
    "make_analyser",
]

MAX_NESTING = 128
"""Deepest brace/bracket nesting accepted at all (selection sets, input objects, lists)."""

MAX_NODES = 10_000
"""Most selections (fields, fragment spreads, inline fragments) visited with fragments expanded."""

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
ROW_LIMIT_ARGUMENTS = ("limit", "batch_size", "first", "last")
"""Arguments that bound the rows of a list field, first match wins (Hasura: ``limit``; ``_stream``:
``batch_size``; Relay-style schemas: ``first``/``last``)."""
LIST_ARGUMENTS = frozenset({"limit", "offset", "where", "order_by", "distinct_on", "first", "last", "batch_size"})
"""Arguments only Hasura list fields take (used by the cost model's document-only fallback)."""
ROWS_ARGUMENT = "objects"
"""``insert_<table>(objects: [...])``: the number of rows a mutation's ``returning`` gives back."""

OperationType = Literal["query", "mutation", "subscription"]


class TokenLimitExceeded(BadRequest):
    """The document has more lexical tokens (comments included) than the plan allows."""

    code = "token-limit-exceeded"
    default_message = "The document has too many tokens"
    hasura_code: str | None = None  # Hasura CE has no such limit: the edge's code is kept


class OperationTooComplex(BadRequest):
    """With fragments expanded, the operation has more selections than the edge will analyse."""

    code = "operation-too-complex"
    default_message = "The operation is too complex"
    hasura_code: str | None = None  # Hasura CE has no such limit: the edge's code is kept


class DocumentTooDeep(BadRequest):
    """The document is nested deeper than any operation the edge accepts (a hard cap, not the plan's)."""

    code = "depth-limit-exceeded"
    default_message = "The document is nested too deeply"
    hasura_code: str | None = None  # Hasura CE has no such limit: the edge's code is kept


@dataclass(frozen=True, slots=True)
class Arg:
    """Where a number comes from: a literal, or a variable (with its declared default, if any).

    For list-valued arguments (``objects``) the number is the list's length.
    """

    literal: int | None = None
    variable: str | None = None
    default: int | None = None

    def value(self, variables: Any) -> int | None:
        """The non-negative number this argument has for a request, or None when it has none."""
        if self.variable is None:
            return self.literal
        found = variables.get(self.variable, _MISSING) if variables else _MISSING
        if found is _MISSING or found is None:
            return self.default
        if isinstance(found, bool):
            return None
        if isinstance(found, int):
            return max(found, 0)
        if isinstance(found, list):
            return len(found)
        return None


_MISSING: Any = object()


class PlanField(NamedTuple):
    """One field of the operation, merged by response key, with its children (a tuple: cheap to build)."""

    name: str
    key: str
    limit: Arg | None = None
    """The row limit argument (``limit``, ``batch_size``, ``first`` or ``last``)."""
    rows: Arg | None = None
    """The length of an ``objects`` list argument (insert mutations)."""
    list_arguments: bool = False
    """The field has an argument only list fields take (``limit``, ``where``, ``order_by``...)."""
    selection: bool = False
    """The field has a selection set (it returns an object or a list of objects)."""
    children: tuple[PlanField, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class OperationAnalysis:
    """What one operation of a document does, with fragments expanded. Immutable and shared (cached).

    Equality is identity: two analyses are the same only if they came from the same cache entry.
    """

    operation_type: OperationType
    operation_name: str | None
    depth: int
    """Hasura's depth (root fields are 0), introspection subtrees excluded."""
    introspection_depth: int
    """Depth of the deepest field under ``__schema``/``__type`` (0 when there are none)."""
    aliases: int
    """Aliased fields, counted with fragments expanded."""
    root_fields: int
    """Root fields (each occurrence, fragments at the root inlined, ``__typename`` included)."""
    root_field_names: tuple[str, ...]
    """Distinct root field names (not aliases), in order of first appearance."""
    field_count: int
    """Fields with fragments expanded (duplicates included)."""
    nodes: int
    """Hasura's node count: fields with a selection set, fragments expanded."""
    directives: int
    """Directives written anywhere in the document (every definition), duplicates included."""
    duplicate_directives: int
    """Directives repeated at one location (``@skip @skip``): invalid unless ``repeatable``, and none of
    Hasura's directives (``@include``, ``@skip``, ``@cached``) is."""
    introspection: bool
    """The operation selects ``__schema`` or ``__type`` (``__typename`` does not count)."""
    plan: tuple[PlanField, ...]
    """The root selections merged by response key: the input of the cost model."""


# --- Bounded parsing -------------------------------------------------------------------------------------

# Strings and comments are consumed whole so that braces (and words) inside them do not count.
_STRINGS_AND_COMMENTS = r'"""(?:\\"""|[^"]|"(?!""))*(?:"""|\Z)|"(?:\\.|[^"\\\n\r])*"?|#[^\n\r]*'
_NESTING_TOKENS = re.compile(_STRINGS_AND_COMMENTS + r"|[{}\[\]]")
_LEXICAL_TOKENS = re.compile(
    _STRINGS_AND_COMMENTS
    + r"|[_A-Za-z][_0-9A-Za-z]*"  # names
    + r"|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"  # numbers
    + r"|\.\.\.|[!$&()\[\]{}:=@|]"  # punctuators
)


def token_count(query: str) -> int:
    """Tokens as graphql-core's ``max_tokens`` counts them (comments included), or fewer: a pre-check in
    the regex engine's C, so a token flood is refused before the parser sees it."""
    return len(_LEXICAL_TOKENS.findall(query))


def nesting_depth(query: str) -> int:
    """Deepest nesting of ``{``/``[`` outside strings and comments; the scan stops past :data:`MAX_NESTING`."""
    depth = deepest = 0
    for match in _NESTING_TOKENS.finditer(query):
        token = match.group()
        if token in ("{", "["):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_NESTING:
                    break
        elif token in ("}", "]"):
            depth -= 1
    return deepest


def _too_deep(query: str) -> bool:
    # A document with few openers cannot be nested deeply: most documents skip the scan.
    return query.count("{") + query.count("[") > MAX_NESTING and nesting_depth(query) > MAX_NESTING


def _parse(query: str, max_tokens: int) -> DocumentNode:
    if _too_deep(query):
        raise DocumentTooDeep(f"The document is nested deeper than {MAX_NESTING} levels")
    if len(query) > max_tokens and token_count(query) > max_tokens:  # every token is at least a character
        raise TokenLimitExceeded(f"The document has more than {max_tokens} tokens")
    try:
        return parse(query, no_location=True, max_tokens=max_tokens)
    except RecursionError:  # graphql-core < 3.3 recurses without a bound of its own
        raise DocumentTooDeep("The document is nested too deeply") from None
    except GraphQLError as error:
        message = error.message
        if "tokens. Parsing aborted" in message:
            raise TokenLimitExceeded(f"The document has more than {max_tokens} tokens") from None
        if "nested too deeply" in message:
            raise DocumentTooDeep("The document is nested too deeply") from None
        raise InvalidDocument() from None


def _select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode:
    """Hasura's rules and messages (``Hasura.GraphQL.Execute.getExecPlanPartial``)."""
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    if operation_name is None:
        if len(operations) != 1:
            raise InvalidDocument(
                "exactly one operation has to be present in the document when operationName is not specified"
            )
        return operations[0]
    for node in operations:
        if node.name is not None and node.name.value == operation_name:
            return node
    raise InvalidDocument("no such operation found in the document")


# --- The document pass: directives and the fragment graph ---------------------------------------------------


def _directives(nodes: tuple[DirectiveNode, ...] | None) -> tuple[int, int]:
    """(directives, repeated ones) at one location."""
    if not nodes:
        return 0, 0
    if len(nodes) == 1:
        return 1, 0
    return len(nodes), len(nodes) - len({node.name.value for node in nodes})


def _document_pass(document: DocumentNode) -> tuple[dict[str, FragmentDefinitionNode], int, int]:
    """Fragments by name, and the directives written anywhere (all, and repeated at one location); refuses
    duplicate, unknown and cyclic fragments. Iterative; visits each written selection once."""
    fragments: dict[str, FragmentDefinitionNode] = {}
    directives = duplicates = 0
    spreads: dict[str, set[str]] = {}
    pending: list[tuple[str | None, tuple[SelectionNode, ...]]] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            name = definition.name.value
            if name in fragments:
                raise InvalidDocument("a fragment name is defined more than once")
            fragments[name] = definition
            spreads[name] = set()
            count, repeated = _directives(definition.directives)
            directives, duplicates = directives + count, duplicates + repeated
            pending.append((name, tuple(definition.selection_set.selections)))
        elif isinstance(definition, OperationDefinitionNode):
            variables = definition.variable_definitions or ()
            located = [definition.directives, *(variable.directives for variable in variables)]
            for nodes in located:
                count, repeated = _directives(nodes)
                directives, duplicates = directives + count, duplicates + repeated
            pending.append((None, tuple(definition.selection_set.selections)))
    used: set[str] = set()
    while pending:
        owner, selections = pending.pop()
        for selection in selections:
            count, repeated = _directives(selection.directives)
            directives, duplicates = directives + count, duplicates + repeated
            if isinstance(selection, FragmentSpreadNode):
                target = selection.name.value
                used.add(target)
                if owner is not None:
                    spreads[owner].add(target)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                pending.append((owner, tuple(selection.selection_set.selections)))
    if not used <= fragments.keys():
        raise InvalidDocument("a fragment spread names a fragment that is not defined")
    _refuse_cycles(spreads)
    return fragments, directives, duplicates


def _refuse_cycles(spreads: dict[str, set[str]]) -> None:
    """Iterative three-colour DFS over the fragment graph."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in spreads:
        if start in state:
            continue
        state[start] = 1
        stack: list[tuple[str, list[str]]] = [(start, sorted(spreads[start]))]
        while stack:
            name, targets = stack[-1]
            if not targets:
                state[name] = 2
                stack.pop()
                continue
            target = targets.pop()
            seen = state.get(target)
            if seen == 1:
                raise InvalidDocument("fragment spreads form a cycle")
            if seen is None:
                state[target] = 1
                stack.append((target, sorted(spreads[target])))


# --- The operation walk ---------------------------------------------------------------------------------


class _Builder:
    __slots__ = ("children", "limit", "list_arguments", "name", "rows", "selection")

    def __init__(self, name: str, limit: Arg | None, rows: Arg | None, list_arguments: bool, selection: bool) -> None:
        self.name = name
        self.limit = limit
        self.rows = rows
        self.list_arguments = list_arguments
        self.selection = selection
        self.children: dict[str, _Builder] = {}


def _number(node: ValueNode, defaults: dict[str, int | None]) -> Arg | None:
    if isinstance(node, IntValueNode):
        return Arg(literal=max(int(node.value), 0))
    if isinstance(node, ListValueNode):
        return Arg(literal=len(node.values))
    if isinstance(node, VariableNode):
        return Arg(variable=node.name.value, default=defaults.get(node.name.value))
    return None  # a value Hasura would refuse: priced as if absent


def _variable_defaults(operation: OperationDefinitionNode) -> dict[str, int | None]:
    defaults: dict[str, int | None] = {}
    for definition in operation.variable_definitions or ():
        value = definition.default_value
        number = _number(value, {}) if value is not None else None
        defaults[definition.variable.name.value] = number.literal if number is not None else None
    return defaults


def _field_builder(field: FieldNode, defaults: dict[str, int | None]) -> _Builder:
    limit = rows = None
    list_arguments = False
    arguments = {argument.name.value: argument.value for argument in field.arguments or ()}
    for name in ROW_LIMIT_ARGUMENTS:
        if name in arguments:
            limit = _number(arguments[name], defaults)
            break
    if ROWS_ARGUMENT in arguments:
        rows = _number(arguments[ROWS_ARGUMENT], defaults)
    if arguments:
        list_arguments = not LIST_ARGUMENTS.isdisjoint(arguments)
    return _Builder(field.name.value, limit, rows, list_arguments, field.selection_set is not None)


def _walk(
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    directives: tuple[int, int],
    max_nodes: int,
) -> OperationAnalysis:
    defaults = _variable_defaults(operation)
    root = _Builder("", None, None, False, True)
    depth = introspection_depth = aliases = root_fields = field_count = nodes = visited = 0
    introspection = False
    root_names: dict[str, None] = {}
    # In-order DFS over iterators, so fields merge in document order: (selections left, parent builder,
    # field depth of these selections, inside __schema/__type).
    stack: list[tuple[Iterator[SelectionNode], _Builder, int, bool]] = [
        (iter(operation.selection_set.selections), root, 0, False)
    ]
    while stack:
        selections, parent, level, in_introspection = stack[-1]
        selection = next(selections, None)
        if selection is None:
            stack.pop()
            continue
        visited += 1
        if visited > max_nodes:
            raise OperationTooComplex(
                f"The operation expands to more than {max_nodes} selections (fields and fragments)"
            )
        if isinstance(selection, FieldNode):
            name = selection.name.value
            field_count += 1
            if selection.alias is not None:
                aliases += 1
            if level == 0:
                root_fields += 1
                root_names[name] = None
            nested_introspection = in_introspection or name in INTROSPECTION_FIELDS
            if name in INTROSPECTION_FIELDS:
                introspection = True
            if nested_introspection:
                introspection_depth = max(introspection_depth, level)
            else:
                depth = max(depth, level)
            key = selection.alias.value if selection.alias is not None else name
            child = parent.children.get(key)
            if child is None:
                child = parent.children[key] = _field_builder(selection, defaults)
            if selection.selection_set is not None:
                nodes += 1
                child.selection = True
                stack.append((iter(selection.selection_set.selections), child, level + 1, nested_introspection))
        elif isinstance(selection, InlineFragmentNode):
            stack.append((iter(selection.selection_set.selections), parent, level, in_introspection))
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            stack.append((iter(fragment.selection_set.selections), parent, level, in_introspection))
    return OperationAnalysis(
        operation_type=operation.operation.value,
        operation_name=operation.name.value if operation.name is not None else None,
        depth=depth,
        introspection_depth=introspection_depth,
        aliases=aliases,
        root_fields=root_fields,
        root_field_names=tuple(root_names),
        field_count=field_count,
        nodes=nodes,
        directives=directives[0],
        duplicate_directives=directives[1],
        introspection=introspection,
        plan=_freeze(root),
    )


def _freeze(root: _Builder) -> tuple[PlanField, ...]:
    """Builders -> immutable PlanFields, children before parents, without recursion."""
    order: list[tuple[str, _Builder]] = []
    stack: list[tuple[str, _Builder]] = [("", root)]
    while stack:
        item = stack.pop()
        order.append(item)
        stack.extend(item[1].children.items())
    frozen: dict[int, PlanField] = {}
    for key, builder in reversed(order):
        children = tuple(frozen.pop(id(child)) for child in builder.children.values())
        if builder is root:
            return children
        frozen[id(builder)] = PlanField(
            name=builder.name,
            key=key,
            limit=builder.limit,
            rows=builder.rows,
            list_arguments=builder.list_arguments,
            selection=builder.selection,
            children=children,
        )
    raise AssertionError("unreachable: the root is always frozen last")


def _analyse(query: str, operation_name: str | None, max_tokens: int, max_nodes: int) -> OperationAnalysis:
    document = _parse(query, max_tokens)
    operation = _select_operation(document, operation_name)
    fragments, directives, duplicates = _document_pass(document)
    return _walk(operation, fragments, (directives, duplicates), max_nodes)


# --- The cache ------------------------------------------------------------------------------------------


class _CachedError:
    __slots__ = ("error",)

    def __init__(self, error: BadRequest) -> None:
        self.error = error


class Analyser:
    """A cached ``analyse(query, operation_name, *, max_tokens) -> OperationAnalysis`` with its own bounded LRU.

    Refusals (400s) are cached as well, so a client repeating a bad document costs a lookup too; each
    hit raises a fresh copy of the error. ``cache_info()``/``cache_clear()`` are functools'.
    """

    __slots__ = ("_cached", "lookup", "max_nodes")

    def __init__(self, maxsize: int = 2048, *, max_nodes: int = MAX_NODES) -> None:
        self.max_nodes = max_nodes
        self._cached = lru_cache(maxsize=maxsize)(self._uncached)
        self.lookup: Callable[[str, str | None, int], object] = self._cached
        """``lookup(query, operation_name, max_tokens)``: the cache itself, for the compiled request path (a
        hit runs no Python frame). An :class:`OperationAnalysis` is the answer; anything else is a cached
        refusal, which calling the analyser raises."""

    def __call__(self, query: str, operation_name: str | None, *, max_tokens: int) -> OperationAnalysis:
        result = self._cached(query, operation_name, max_tokens)
        if isinstance(result, _CachedError):
            error = result.error
            raise type(error)(error.message)
        return result

    def _uncached(self, query: str, operation_name: str | None, max_tokens: int) -> OperationAnalysis | _CachedError:
        try:
            return _analyse(query, operation_name, max_tokens, self.max_nodes)
        except BadRequest as error:
            return _CachedError(error)

    def cache_info(self) -> Any:
        return self._cached.cache_info()

    def cache_clear(self) -> None:
        self._cached.cache_clear()


def make_analyser(maxsize: int = 2048, *, max_nodes: int = MAX_NODES) -> Analyser:
    """A new :class:`Analyser` (its own LRU of ``maxsize`` entries; ``max_nodes`` bounds fragment expansion)."""
    return Analyser(maxsize, max_nodes=max_nodes)


analyse: Analyser = make_analyser()
"""The process-wide analyser: ``analyse(query, operation_name, *, max_tokens) -> OperationAnalysis``."""
