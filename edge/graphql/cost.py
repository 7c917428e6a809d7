"""Price an analysed operation the way Hasura executes it: roughly, the objects it can return.

Rules (``object_cost=1``, ``scalar_cost=0``, ``aggregate_cost=10``, ``mutation_base_cost=10``,
``default_list_size=100`` by default)::

    scalar or enum field        scalar_cost                      (__typename included)
    object field                object_cost + children           (object relationship, insert_<t>_one...)
    <table>_by_pk               object_cost + children           (one row at most)
    list field                  rows x (object_cost + children)  (table, array relationship, returning...)
    <table>_aggregate           aggregate_cost + its ``nodes`` priced as a list with the field's
                                arguments; ``aggregate { count max {...} }`` is inside the fixed price
    mutation root field         mutation_base_cost + the above for its result

``rows`` for a list field, per request:

1. its ``limit`` argument (``batch_size`` for ``_stream``, ``first``/``last`` elsewhere), a literal or a
   variable (a missing variable falls back to its declared default); for ``returning`` under
   ``insert_<t>(objects: [...])``, the number of objects;
2. capped by the role's select-permission ``limit`` on the row type (Hasura applies the lower of the two);
3. with neither, the role's permission limit alone, else ``default_list_size``.

So ``users(limit: 10) { id orders { id } }`` costs ``10 x (1 + 100 x 1) = 1010`` for a role without
permission limits, and ``users(limit: 99999999) { id }`` costs 99,999,999: over any sane ``max_cost``.

Fields with the same response key are merged before pricing (the analysis does it), so 500 copies
of a field cost what one does; aliases are separate fields and each is priced.

**Without a schema** (``CostModel(None, ...)``) the model falls back on the document alone, and
callers must log ``"cost estimated without schema"``: a field is a list if it has a row limit
argument or an argument only Hasura list fields take (``limit``, ``offset``, ``where``, ``order_by``,
``distinct_on``, ``batch_size``, ``first``, ``last``), if it is a query/subscription root field with a
selection set (a Hasura table), or if it is ``returning``; a name ending in ``_aggregate`` is an
aggregate and one ending in ``_by_pk`` one row; anything else with a selection set is one object. At the
root, the field name (less ``_aggregate``/``_stream``) is taken as the row type for permission limits.
An array relationship selected without arguments is then priced as one object: an under-estimate.
The same fallback applies to fields the schema does not know (Hasura will refuse those anyway).
Introspection subtrees (``__schema``, ``__type``) are priced as one object per field with a selection.

Speed: the per-analysis work (type lookups, folding every subtree that depends on neither variables
nor role into a constant) happens once and is cached per analysis (by identity, bounded LRU). A request
then evaluates only the list fields whose row count depends on variables or role, and the result is
memoised per (role, values of the variables it reads): an operation that depends on neither is a
constant, and a repeated request is a dict lookup.
The response walk (:func:`edge.graphql.actual_cost.actual_cost`) reads its own copy of the priced
fields, built once per analysis with the rest: :class:`ResponseField` objects, less the fields that
can add nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from edge.graphql.analysis import INTROSPECTION_FIELDS, Arg, OperationAnalysis, PlanField
from edge.graphql.permissions import PermissionLimits
from edge.graphql.schema_info import SchemaInfo

__all__ = ["MAX_COST", "CostModel", "CostNode", "ResponseField"]

MAX_COST: Final = 2**63 - 1
"""Estimates are clamped here (``limit: 99999999`` nested ten deep is a 80-digit number otherwise)."""
MAX_MEMO = 256
"""Results kept per compiled operation, keyed by role and the variables it reads (cleared when full)."""

_NO_PERMISSIONS: Mapping[str, int] = MappingProxyType({})


class CostNode(NamedTuple):
    """One priced field: ``base + rows x (per_row + children)``, ``rows`` being 1 unless ``is_list``."""

    key: str
    base: int
    per_row: int
    is_list: bool
    limit: Arg | None
    rows: Arg | None
    permission: Mapping[str, int]
    """Role -> select-permission row limit for the list's row type."""
    children: tuple[CostNode, ...]


class ResponseField:
    """A field as :func:`edge.graphql.actual_cost.cost_and_rows` reads it in every response.

    ``base`` when ``key`` is in the response object, ``per_row`` for each object under it, and
    ``children`` looked up in those objects. ``is_object``: the field has a selection set, so the
    objects under it are rows (a scalar's value never is, even a ``jsonb`` object). A plain class
    rather than a NamedTuple: compiled, each attribute is a struct field, not a tuple item checked
    and unboxed on every read.
    """

    __slots__ = ("base", "children", "is_object", "key", "per_row")

    def __init__(
        self, key: str, base: int, per_row: int, children: tuple[ResponseField, ...], *, is_object: bool
    ) -> None:
        self.key = key
        self.base = base
        self.per_row = per_row
        self.children = children
        self.is_object = is_object


class _Context(NamedTuple):
    """How to price a field, given where it sits."""

    parent_type: str | None
    is_root: bool = False
    introspection: bool = False
    free: bool = False
    """Inside an aggregate's fixed price (``aggregate { count }``): not priced."""
    rows_of_parent: bool = False
    """``nodes`` of an aggregate or ``returning`` of a mutation: a list priced with the parent's arguments."""
    inherited_limit: Arg | None = None
    inherited_rows: Arg | None = None
    inherited_permission: Mapping[str, int] = _NO_PERMISSIONS
    inherited_type: str | None = None


class _Price(NamedTuple):
    base: int = 0
    per_row: int = 0
    is_list: bool = False
    limit: Arg | None = None
    rows: Arg | None = None
    permission: Mapping[str, int] = _NO_PERMISSIONS


_Children = Callable[[PlanField], _Context]


# A flat post-order instruction: (dynamic children, constant part of the children, base, per_row,
# the list node whose row count is computed per request, or None for a fixed count of 1).
_Op = tuple[int, int, int, int, CostNode | None]


class _Program:
    __slots__ = ("constant", "dynamic", "memo", "ops", "response_fields", "variables")

    def __init__(
        self,
        response_fields: tuple[ResponseField, ...],
        constant: int,
        ops: list[_Op],
        variables: tuple[str, ...],
    ) -> None:
        self.response_fields = response_fields
        self.constant = constant
        self.ops = ops
        self.variables = variables
        self.dynamic = bool(ops)
        self.memo: dict[Any, int] = {}


class CostModel:
    """Estimates (:meth:`estimate`) and measures (:func:`edge.graphql.actual_cost.actual_cost`) cost.

    Args:
        schema: Hasura's schema shapes; None for the document-only fallback (log
            ``"cost estimated without schema"`` when using it).
        permissions: select-permission row limits per type and role; None for none.
        default_list_size: rows assumed for a list field with no limit argument and no permission limit.
        aggregate_cost: the fixed price of a ``<table>_aggregate`` field.
        mutation_base_cost: added for every root field of a mutation.
        object_cost: the price of one object (a row, an object relationship...).
        scalar_cost: the price of a scalar field.
        cache_size: compiled operations kept (per analysis, by identity).
    """

    def __init__(
        self,
        schema: SchemaInfo | None,
        permissions: PermissionLimits | None,
        *,
        default_list_size: int = 100,
        aggregate_cost: int = 10,
        mutation_base_cost: int = 10,
        object_cost: int = 1,
        scalar_cost: int = 0,
        cache_size: int = 2048,
    ) -> None:
        self.schema = schema
        self.permissions = permissions
        self.default_list_size = default_list_size
        self.aggregate_cost = aggregate_cost
        self.mutation_base_cost = mutation_base_cost
        self.object_cost = object_cost
        self.scalar_cost = scalar_cost
        self._program = lru_cache(maxsize=cache_size)(self._compile)

    @property
    def schema_aware(self) -> bool:
        """False when estimates use the document-only fallback."""
        return self.schema is not None

    def estimate(
        self, analysis: OperationAnalysis, *, variables: Mapping[str, Any] | None = None, role: str | None = None
    ) -> int:
        """The operation's cost for these variables and this role."""
        program: _Program = self._program(analysis)
        if not program.dynamic:
            return program.constant
        if not program.variables:
            key: Any = role
        elif variables:
            key = (role, *[variables.get(name) for name in program.variables])
        else:
            key = (role,)
        try:
            cached = program.memo.get(key)
        except TypeError:  # an unhashable variable value (a list of objects to insert)
            return self._run(program, variables, role)
        if cached is None:
            cached = self._run(program, variables, role)
            if len(program.memo) >= MAX_MEMO:
                program.memo.clear()
            program.memo[key] = cached
        return cached

    def tree(self, analysis: OperationAnalysis) -> tuple[ResponseField, ...]:
        """What :func:`~edge.graphql.actual_cost.cost_and_rows` walks alongside the response: the operation's
        fields with a price or a selection set (its objects are rows even when they cost nothing), less
        scalars that add nothing (at ``scalar_cost=0``)."""
        program: _Program = self._program(analysis)
        return program.response_fields

    def rows(self, node: CostNode, variables: Mapping[str, Any] | None, role: str | None) -> int:
        """How many rows a list field is priced at for a request."""
        wanted = node.limit.value(variables) if node.limit is not None else None
        if wanted is None and node.rows is not None:
            wanted = node.rows.value(variables)
        cap = node.permission.get(role) if role is not None and node.permission else None
        if wanted is None:
            return self.default_list_size if cap is None else cap
        return wanted if cap is None else min(wanted, cap)

    # --- per request ---------------------------------------------------------------------------------------

    def _run(self, program: _Program, variables: Mapping[str, Any] | None, role: str | None) -> int:
        stack: list[int] = []
        for dynamic, constant, base, per_row, node in program.ops:
            total = constant
            if dynamic:
                total += sum(stack[-dynamic:])
                del stack[-dynamic:]
            count = 1 if node is None else self.rows(node, variables, role)
            stack.append(base + count * (per_row + total))
        return min(program.constant + sum(stack), MAX_COST)

    # --- once per analysis ---------------------------------------------------------------------------------

    def _compile(self, analysis: OperationAnalysis) -> _Program:
        roots = self._price_tree(analysis)
        constant, ops, variables = _fold(roots, self.default_list_size)
        return _Program(_response_fields(roots), min(constant, MAX_COST), ops, variables)

    def _price_tree(self, analysis: OperationAnalysis) -> tuple[CostNode, ...]:
        """PlanFields -> CostNodes without recursion: pre-order with parent indices, built in reverse."""
        root_type = self.schema.root_type(analysis.operation_type) if self.schema is not None else None
        mutation = analysis.operation_type == "mutation"
        entries: list[tuple[PlanField, _Price, int]] = []
        stack: list[tuple[PlanField, _Context, int]] = [
            (field, _Context(root_type, is_root=True), -1) for field in reversed(analysis.plan)
        ]
        while stack:
            field, context, parent = stack.pop()
            node, children_context = self._describe(field, context, mutation)
            index = len(entries)
            entries.append((field, node, parent))
            if children_context is not None:
                for child in reversed(field.children):
                    stack.append((child, children_context(child), index))
        children: list[list[CostNode]] = [[] for _ in entries]
        roots: list[CostNode] = []
        for index in range(len(entries) - 1, -1, -1):
            field, node, parent = entries[index]
            built = CostNode(field.key, *node, children=tuple(reversed(children[index])))
            (roots if parent < 0 else children[parent]).append(built)
        roots.reverse()
        return tuple(roots)

    def _describe(self, field: PlanField, context: _Context, mutation: bool) -> tuple[_Price, _Children | None]:
        """The field's price, and the contexts of its children (None: they are not priced)."""
        if context.free:
            return _Price(), None
        base = self.mutation_base_cost if context.is_root and mutation else 0
        name = field.name
        if not field.selection or name == "__typename":
            return _Price(base=base + self.scalar_cost), None
        if context.introspection or name in INTROSPECTION_FIELDS:
            inside = _Context(None, introspection=True)
            return _Price(base=base, per_row=self.object_cost), lambda _child: inside
        info = self.schema.field(context.parent_type, name) if self.schema and context.parent_type else None
        kind: str
        type_name: str | None
        if info is not None:
            kind, type_name = info.kind, info.type_name
            if kind == "scalar":  # a selection on a scalar: Hasura refuses it; price it as an object
                kind = "object"
        else:
            kind, type_name = self._guess(field, context, mutation)

        if kind == "aggregate":
            rows_type = self._aggregate_rows_type(type_name, name, context)
            nodes = _Context(
                rows_type,
                rows_of_parent=True,
                inherited_limit=field.limit,
                inherited_permission=self._permission(rows_type),
                inherited_type=rows_type,
            )
            free = _Context(None, free=True)
            return _Price(base=base + self.aggregate_cost), lambda child: nodes if child.name == "nodes" else free
        plain = _Context(type_name)
        children: _Children = lambda _child: plain  # noqa: E731
        if context.is_root and mutation:
            returning = _Context(type_name, rows_of_parent=True, inherited_rows=field.rows)
            children = lambda child: returning if child.name == "returning" else plain  # noqa: E731
        if kind != "list":
            return _Price(base=base, per_row=self.object_cost), children
        if context.rows_of_parent:
            limit, rows, permission = context.inherited_limit, context.inherited_rows, context.inherited_permission
        else:
            limit, rows, permission = field.limit, None, self._permission(type_name)
        return _Price(base, self.object_cost, True, limit, rows, permission), children

    def _guess(self, field: PlanField, context: _Context, mutation: bool) -> tuple[str, str | None]:
        """The document-only fallback (see the module docstring)."""
        name = field.name
        if context.is_root and mutation:
            return "object", None  # insert_<t>, update_<t>(where: ...) return one response object
        if name.endswith("_aggregate"):
            return "aggregate", None
        if name.endswith("_by_pk"):
            return "object", None
        if context.rows_of_parent:
            return "list", context.inherited_type
        if field.limit is not None or field.list_arguments or (context.is_root and not mutation):
            return "list", name.removesuffix("_stream") if context.is_root else None
        return "object", None

    def _aggregate_rows_type(self, type_name: str | None, name: str, context: _Context) -> str | None:
        if self.schema is not None and type_name is not None:
            nodes = self.schema.field(type_name, "nodes")
            if nodes is not None:
                return nodes.type_name
        return name.removesuffix("_aggregate") if context.is_root else None

    def _permission(self, type_name: str | None) -> Mapping[str, int]:
        if self.permissions is None or type_name is None:
            return _NO_PERMISSIONS
        return self.permissions.roles_for(type_name)


def _post_order(roots: tuple[CostNode, ...]) -> list[CostNode]:
    """Every node under ``roots``, each after its children, left to right. Iterative: no recursion limit."""
    order: list[CostNode] = []
    stack: list[tuple[CostNode, bool]] = [(node, False) for node in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children))
    return order


def _fold(roots: tuple[CostNode, ...], default_rows: int) -> tuple[int, list[_Op], tuple[str, ...]]:
    """Constant-fold every subtree that depends on neither variables nor role.

    Returns the constant part of the whole operation, the post-order instructions for the rest, and
    the variables the instructions read. Iterative (post-order with an explicit stack).
    """
    ops: list[_Op] = []
    variables: set[str] = set()
    # Per node in post-order: (is dynamic, constant value if static)
    results: dict[int, tuple[bool, int]] = {}
    for node in _post_order(roots):
        constant = dynamic_children = 0
        for child in node.children:
            dynamic, value = results.pop(id(child))
            if dynamic:
                dynamic_children += 1
            else:
                constant += value
        read = [arg.variable for arg in (node.limit, node.rows) if arg is not None and arg.variable is not None]
        dynamic_rows = node.is_list and (bool(read) or bool(node.permission))
        if node.is_list:
            variables.update(read)
        if dynamic_children or dynamic_rows:
            ops.append((dynamic_children, constant, node.base, node.per_row, node if dynamic_rows else None))
            results[id(node)] = (True, 0)
        else:
            count = _static_rows(node, default_rows)
            results[id(node)] = (False, node.base + count * (node.per_row + constant))
    total = 0
    for node in roots:
        dynamic, value = results.pop(id(node))
        if not dynamic:
            total += value
    return total, ops, tuple(sorted(variables))


def _response_fields(roots: tuple[CostNode, ...]) -> tuple[ResponseField, ...]:
    """The fields a response is walked for (see :meth:`CostModel.tree`). Iterative post-order."""
    # Per node in post-order: its ResponseField, or None for a scalar that prices 0. A node has children
    # exactly when its field has a selection set that is priced (not inside an aggregate's fixed price).
    built: dict[int, ResponseField | None] = {}
    for node in _post_order(roots):
        children = _kept(node.children, built)
        if node.base or node.per_row or node.children:
            built[id(node)] = ResponseField(node.key, node.base, node.per_row, children, is_object=bool(node.children))
        else:
            built[id(node)] = None
    return _kept(roots, built)


def _kept(nodes: tuple[CostNode, ...], built: dict[int, ResponseField | None]) -> tuple[ResponseField, ...]:
    """The built fields of ``nodes`` that were kept, in order (taken out of ``built``)."""
    fields = [built.pop(id(node)) for node in nodes]
    return tuple(field for field in fields if field is not None)


def _static_rows(node: CostNode, default_rows: int) -> int:
    """Rows of a node whose count depends on neither variables nor role."""
    if not node.is_list:
        return 1
    if node.limit is not None and node.limit.literal is not None:
        return node.limit.literal
    if node.limit is None and node.rows is not None and node.rows.literal is not None:
        return node.rows.literal
    return default_rows
