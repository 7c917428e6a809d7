"""Read the Hasura metadata directory (config v3, metadata version 3) the way the Hasura CLI builds it.

``load_metadata(directory)`` returns the same document ``hasura metadata apply`` sends to the server
(``replace_metadata``): ``{"version": 3, "sources": [...], "actions": [...], "custom_types": {...}, ...}``
with every ``!include`` resolved. Files that do not exist are left out, as the CLI does.

``!include`` follows the CLI (``cli/internal/metadataobject/sources/yaml.go``): the value is either a YAML
``!include`` tag or a string containing ``!include`` that splits on one space into exactly two parts; the path is
relative to the directory of the file that contains it, and included files resolve their own includes relative to
themselves. The CLI resolves includes only in the source and remote-schema files, so the same is done here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
METADATA_DIR = REPO_ROOT / "hasura" / "metadata"

INCLUDE_TAG = "!include"

# Top-level metadata key -> file, in the order of the CLI's metadata objects. ``actions.yaml`` feeds two keys.
METADATA_FILES: dict[str, str] = {
    "sources": "databases/databases.yaml",
    "actions": "actions.yaml",
    "custom_types": "actions.yaml",
    "remote_schemas": "remote_schemas.yaml",
    "query_collections": "query_collections.yaml",
    "allowlist": "allow_list.yaml",
    "cron_triggers": "cron_triggers.yaml",
    "api_limits": "api_limits.yaml",
    "rest_endpoints": "rest_endpoints.yaml",
    "inherited_roles": "inherited_roles.yaml",
    "graphql_schema_introspection": "graphql_schema_introspection.yaml",
    "network": "network.yaml",
    "backend_configs": "backend_configs.yaml",
    "metrics_config": "metrics_config.yaml",
    "opentelemetry": "opentelemetry.yaml",
}
_FILES_WITH_INCLUDES = {"databases/databases.yaml", "remote_schemas.yaml"}


class MetadataError(ValueError):
    """The metadata directory cannot be read the way the Hasura CLI would read it."""


@dataclass(frozen=True)
class _Include:
    path: str


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps a tagged ``!include path`` scalar as a marker to resolve later."""


def _construct_include(loader: _Loader, node: yaml.Node) -> _Include:
    if not isinstance(node, yaml.ScalarNode):
        raise MetadataError(f"found {INCLUDE_TAG} on a non-scalar node at {node.start_mark}")
    return _Include(str(loader.construct_scalar(node)))


_Loader.add_constructor(INCLUDE_TAG, _construct_include)


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)
    except FileNotFoundError:
        raise MetadataError(f"missing metadata file: {path}") from None
    except yaml.YAMLError as error:
        raise MetadataError(f"invalid YAML in {path}: {error}") from error


def _include_target(value: Any) -> str | None:
    if isinstance(value, _Include):
        return value.path
    if isinstance(value, str) and INCLUDE_TAG in value:
        parts = value.split(" ")
        if len(parts) == 2:
            return parts[1].strip('"')
    return None


def _resolve(value: Any, base_dir: Path, seen: tuple[Path, ...]) -> Any:
    target = _include_target(value)
    if target is not None:
        path = (base_dir / target).resolve()
        if path in seen:
            raise MetadataError(f"{INCLUDE_TAG} cycle: {' -> '.join(map(str, (*seen, path)))}")
        return _resolve(_read_yaml(path), path.parent, (*seen, path))
    if isinstance(value, dict):
        return {key: _resolve(item, base_dir, seen) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, base_dir, seen) for item in value]
    return value


def load_yaml_with_includes(path: Path) -> Any:
    """Load one YAML file and resolve ``!include`` relative to each including file."""
    path = path.resolve()
    return _resolve(_read_yaml(path), path.parent, (path,))


def included_files(path: Path) -> list[Path]:
    """Files pulled in by ``!include`` from ``path``, recursively, in document order."""
    found: list[Path] = []

    def walk(value: Any, base_dir: Path) -> None:
        target = _include_target(value)
        if target is not None:
            child = (base_dir / target).resolve()
            found.append(child)
            walk(_read_yaml(child), child.parent)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item, base_dir)
        elif isinstance(value, list):
            for item in value:
                walk(item, base_dir)

    path = path.resolve()
    walk(_read_yaml(path), path.parent)
    return found


def load_metadata(directory: Path = METADATA_DIR) -> dict[str, Any]:
    """The metadata document the CLI would build from ``directory``."""
    directory = Path(directory)
    version_doc = _read_yaml(directory / "version.yaml")
    if not isinstance(version_doc, dict) or "version" not in version_doc:
        raise MetadataError(f"{directory / 'version.yaml'} has no 'version' key")
    metadata: dict[str, Any] = {"version": version_doc["version"]}
    for key, filename in METADATA_FILES.items():
        path = directory / filename
        if not path.is_file():
            continue
        content = load_yaml_with_includes(path) if filename in _FILES_WITH_INCLUDES else _read_yaml(path)
        if filename == "actions.yaml":
            content = (content or {}).get(key)
            if content is None:
                continue
        metadata[key] = content
    return metadata


def load_actions_sdl(directory: Path = METADATA_DIR) -> str:
    """The action signatures and custom types (``actions.graphql``); empty when the file is missing."""
    path = Path(directory) / "actions.graphql"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


# --- Queries over a loaded metadata document -------------------------------------------------------------


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str

    @classmethod
    def from_metadata(cls, value: Any) -> TableRef:
        if isinstance(value, str):
            return cls("public", value)
        if isinstance(value, Mapping):
            return cls(str(value.get("schema", "public")), str(value["name"]))
        raise MetadataError(f"not a table reference: {value!r}")

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def source(metadata: Mapping[str, Any], name: str = "default") -> dict[str, Any]:
    for entry in metadata.get("sources", []):
        if entry.get("name") == name:
            return dict(entry)
    raise MetadataError(f"no source named {name!r}")


def iter_tables(metadata: Mapping[str, Any], source_name: str = "default") -> Iterator[tuple[TableRef, dict[str, Any]]]:
    """(table, table metadata) for every tracked table of a source."""
    for entry in source(metadata, source_name).get("tables") or []:
        yield TableRef.from_metadata(entry["table"]), entry


def select_permission_limits(
    metadata: Mapping[str, Any], source_name: str = "default"
) -> dict[TableRef, dict[str, int | None]]:
    """For each table, role -> select permission ``limit`` (None when the permission sets no limit)."""
    limits: dict[TableRef, dict[str, int | None]] = {}
    for table, entry in iter_tables(metadata, source_name):
        for permission in entry.get("select_permissions") or []:
            limit = permission["permission"].get("limit")
            limits.setdefault(table, {})[permission["role"]] = None if limit is None else int(limit)
    return limits


def roles(metadata: Mapping[str, Any]) -> set[str]:
    """Every role named by a table permission or an action permission."""
    found: set[str] = set()
    for entry in metadata.get("sources", []):
        for table in entry.get("tables") or []:
            for kind in ("insert_permissions", "select_permissions", "update_permissions", "delete_permissions"):
                found.update(permission["role"] for permission in table.get(kind) or [])
    for action in metadata.get("actions") or []:
        found.update(permission["role"] for permission in action.get("permissions") or [])
    return found


# --- actions.graphql -----------------------------------------------------------------------------------------

GRAPHQL_BUILTIN_SCALARS = frozenset({"Int", "Float", "String", "Boolean", "ID"})


def actions_document(sdl: str) -> Any:
    """Parse ``actions.graphql``. The CLI writes one ``type Mutation { ... }`` block per action; repeated root
    type blocks are turned into ``extend type`` so that graphql-core accepts the document."""
    from graphql import DocumentNode, ObjectTypeDefinitionNode, ObjectTypeExtensionNode, parse

    document = parse(sdl)
    seen: set[str] = set()
    definitions = []
    for definition in document.definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value in seen:
            definition = ObjectTypeExtensionNode(
                name=definition.name,
                interfaces=definition.interfaces,
                directives=definition.directives,
                fields=definition.fields,
            )
        elif isinstance(definition, ObjectTypeDefinitionNode):
            seen.add(definition.name.value)
        definitions.append(definition)
    return DocumentNode(definitions=tuple(definitions))


def undeclared_type_names(sdl: str) -> set[str]:
    """Named types used in ``actions.graphql`` but not defined there (Hasura supplies them: built-in GraphQL
    scalars and the Postgres scalars of tracked columns such as ``uuid``, ``numeric``, ``timestamptz``)."""
    from graphql import NamedTypeNode, TypeDefinitionNode, TypeExtensionNode, visit
    from graphql.language import Visitor

    document = actions_document(sdl)
    defined = {d.name.value for d in document.definitions if isinstance(d, TypeDefinitionNode | TypeExtensionNode)}
    used: set[str] = set()

    class _Collect(Visitor):
        def enter_named_type(self, node: NamedTypeNode, *_: Any) -> None:
            used.add(node.name.value)

    visit(document, _Collect())
    return used - defined - GRAPHQL_BUILTIN_SCALARS


def actions_schema(sdl: str, scalars: set[str] | None = None) -> Any:
    """A graphql-core schema for ``actions.graphql``: the given (Postgres) scalars are declared, and an empty
    ``Query`` root is added when the file has only mutations."""
    from graphql import DocumentNode, build_ast_schema, parse

    document = actions_document(sdl)
    names = undeclared_type_names(sdl) if scalars is None else scalars
    prelude = "".join(f"scalar {name}\n" for name in sorted(names))
    if not any(getattr(d, "name", None) is not None and d.name.value == "Query" for d in document.definitions):
        prelude += "type Query {\n  _unused: Boolean\n}\n"
    extra = parse(prelude).definitions if prelude else ()
    return build_ast_schema(DocumentNode(definitions=(*extra, *document.definitions)))


# --- Relationships and permission filters against a real database ---------------------------------------------


@dataclass
class Catalog:
    """What Hasura reads from Postgres to resolve metadata: columns (with their type names) and single-column
    foreign keys, for the tables of the given schemas."""

    columns: dict[TableRef, dict[str, str]]
    foreign_keys: dict[tuple[TableRef, str], tuple[TableRef, str]]

    @classmethod
    def load(cls, conn: Any, schemas: tuple[str, ...] = ("public",)) -> Catalog:
        columns: dict[TableRef, dict[str, str]] = {}
        for schema, table, column, udt in conn.execute(
            "SELECT c.table_schema, c.table_name, c.column_name, c.udt_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = ANY(%s) AND t.table_type = 'BASE TABLE'",
            (list(schemas),),
        ).fetchall():
            columns.setdefault(TableRef(schema, table), {})[column] = udt
        foreign_keys: dict[tuple[TableRef, str], tuple[TableRef, str]] = {}
        for schema, table, column, ref_schema, ref_table, ref_column in conn.execute(
            """
            SELECT sn.nspname, s.relname, sa.attname, tn.nspname, t.relname, ta.attname
            FROM pg_constraint c
            JOIN pg_class s ON s.oid = c.conrelid JOIN pg_namespace sn ON sn.oid = s.relnamespace
            JOIN pg_class t ON t.oid = c.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
            JOIN pg_attribute sa ON sa.attrelid = c.conrelid AND sa.attnum = c.conkey[1]
            JOIN pg_attribute ta ON ta.attrelid = c.confrelid AND ta.attnum = c.confkey[1]
            WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 AND sn.nspname = ANY(%s)
            """,
            (list(schemas),),
        ).fetchall():
            foreign_keys[(TableRef(schema, table), column)] = (TableRef(ref_schema, ref_table), ref_column)
        return cls(columns, foreign_keys)


@dataclass(frozen=True)
class Relationship:
    name: str
    kind: str  # "object" or "array"
    source: TableRef
    target: TableRef
    column_mapping: dict[str, str]  # source column -> target column


def resolve_relationships(
    metadata: Mapping[str, Any], catalog: Catalog, source_name: str = "default"
) -> dict[TableRef, dict[str, Relationship]]:
    """Resolve every relationship of a source against the database, as Hasura does when it builds its schema
    cache. Raises MetadataError for a foreign key that does not exist."""
    resolved: dict[TableRef, dict[str, Relationship]] = {}
    for table, entry in iter_tables(metadata, source_name):
        for kind in ("object", "array"):
            for rel in entry.get(f"{kind}_relationships") or []:
                name, using = rel["name"], rel["using"]
                if "manual_configuration" in using:
                    manual = using["manual_configuration"]
                    target = TableRef.from_metadata(manual["remote_table"])
                    mapping = dict(manual["column_mapping"])
                elif isinstance(using.get("foreign_key_constraint_on"), str):
                    column = using["foreign_key_constraint_on"]
                    if (table, column) not in catalog.foreign_keys:
                        raise MetadataError(f"{table}.{name}: no foreign key on column {column!r}")
                    target, target_column = catalog.foreign_keys[(table, column)]
                    mapping = {column: target_column}
                elif isinstance(using.get("foreign_key_constraint_on"), Mapping):
                    remote = using["foreign_key_constraint_on"]
                    target = TableRef.from_metadata(remote["table"])
                    remote_column = remote["column"]
                    referenced = catalog.foreign_keys.get((target, remote_column))
                    if referenced is None or referenced[0] != table:
                        raise MetadataError(f"{table}.{name}: {target}.{remote_column} is not a foreign key to {table}")
                    mapping = {referenced[1]: remote_column}
                else:
                    raise MetadataError(f"{table}.{name}: unknown relationship definition {using!r}")
                if name in resolved.get(table, {}):
                    raise MetadataError(f"{table}: duplicate relationship {name!r}")
                resolved.setdefault(table, {})[name] = Relationship(name, kind, table, target, mapping)
    return resolved


def _session_value(operand: Any, session: Mapping[str, str]) -> Any:
    if isinstance(operand, str) and operand.lower().startswith("x-hasura-"):
        key = operand.lower()
        if key not in session:
            raise MetadataError(f"session variable {operand!r} is not set")
        return session[key]
    return operand


_SQL_OPERATORS = {"_eq": "=", "_neq": "<>", "_gt": ">", "_lt": "<", "_gte": ">=", "_lte": "<=", "_like": "LIKE"}


def bool_exp_sql(
    exp: Mapping[str, Any],
    table: TableRef,
    alias: str,
    relationships: Mapping[TableRef, Mapping[str, Relationship]],
    session: Mapping[str, str],
) -> Any:
    """Compile a permission boolean expression to a SQL condition on ``alias`` (a row of ``table``), the way
    Hasura applies it: relationships become EXISTS over the related rows, session variables are substituted.
    Supports the logical operators, ``_exists``, and the comparison operators used in this project."""
    from psycopg import sql

    parts: list[sql.Composable] = []
    for key, value in exp.items():
        if key in ("_and", "_or"):
            inner = [bool_exp_sql(item, table, alias, relationships, session) for item in value]
            joiner = sql.SQL(" AND " if key == "_and" else " OR ")
            empty = sql.SQL("TRUE" if key == "_and" else "FALSE")
            parts.append(sql.SQL("({})").format(joiner.join(inner)) if inner else empty)
        elif key == "_not":
            parts.append(sql.SQL("NOT ({})").format(bool_exp_sql(value, table, alias, relationships, session)))
        elif key == "_exists":
            target = TableRef.from_metadata(value["_table"])
            sub = f"{alias}_x"
            condition = bool_exp_sql(value["_where"], target, sub, relationships, session)
            parts.append(
                sql.SQL("EXISTS (SELECT 1 FROM {}.{} AS {} WHERE {})").format(
                    sql.Identifier(target.schema), sql.Identifier(target.name), sql.Identifier(sub), condition
                )
            )
        elif key in relationships.get(table, {}):
            rel = relationships[table][key]
            sub = f"{alias}_{key}"
            joins = [
                sql.SQL("{}.{} = {}.{}").format(
                    sql.Identifier(sub), sql.Identifier(target_col), sql.Identifier(alias), sql.Identifier(source_col)
                )
                for source_col, target_col in rel.column_mapping.items()
            ]
            condition = bool_exp_sql(value, rel.target, sub, relationships, session)
            parts.append(
                sql.SQL("EXISTS (SELECT 1 FROM {}.{} AS {} WHERE {} AND {})").format(
                    sql.Identifier(rel.target.schema),
                    sql.Identifier(rel.target.name),
                    sql.Identifier(sub),
                    sql.SQL(" AND ").join(joins),
                    condition,
                )
            )
        else:
            column = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(key))
            for op, operand in value.items():
                if op in _SQL_OPERATORS:
                    parts.append(
                        sql.SQL("{} {} {}").format(
                            column, sql.SQL(_SQL_OPERATORS[op]), sql.Literal(_session_value(operand, session))
                        )
                    )
                elif op in ("_in", "_nin"):
                    items = [sql.Literal(_session_value(item, session)) for item in operand]
                    if not items:
                        parts.append(sql.SQL("FALSE" if op == "_in" else "TRUE"))
                        continue
                    negate = "NOT " if op == "_nin" else ""
                    parts.append(sql.SQL("{} {}IN ({})").format(column, sql.SQL(negate), sql.SQL(", ").join(items)))
                elif op == "_is_null":
                    parts.append(sql.SQL("{} IS {}NULL").format(column, sql.SQL("" if operand else "NOT ")))
                else:
                    raise NotImplementedError(f"operator {op} is not supported by bool_exp_sql")
    if not parts:
        return sql.SQL("TRUE")
    return sql.SQL("({})").format(sql.SQL(" AND ").join(parts))
