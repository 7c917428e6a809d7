"""Contract tests for hasura/metadata without a running Hasura: file layout, keys, event triggers, actions.

Keys are checked against Hasura's own definitions (server ``Hasura/RQL/Types/*.hs`` parsers and the CLI's
``cli/internal/metadataobject`` export code).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLInputObjectType, GraphQLObjectType, OperationDefinitionNode, parse

from tests.support.hasura_metadata import (
    METADATA_DIR,
    MetadataError,
    TableRef,
    actions_schema,
    included_files,
    iter_tables,
    load_actions_sdl,
    load_metadata,
    load_yaml_with_includes,
    roles,
    select_permission_limits,
    undeclared_type_names,
)

TRIGGER_NAME = re.compile(r"^[A-Za-z]+[A-Za-z0-9_\-]*$")  # isIllegalTriggerName in EventTrigger.hs
ALLOWED_ROLES = {"user", "anonymous"}
SESSION_VARIABLES = {"x-hasura-user-id"}  # what the edge puts in the session besides x-hasura-role

EXPORTED_FILES = {
    "version.yaml",
    "databases/databases.yaml",
    "actions.graphql",
    "actions.yaml",
    "allow_list.yaml",
    "api_limits.yaml",
    "cron_triggers.yaml",
    "graphql_schema_introspection.yaml",
    "inherited_roles.yaml",
    "network.yaml",
    "query_collections.yaml",
    "remote_schemas.yaml",
    "rest_endpoints.yaml",
}
SEQUENCE_FILES = {
    "allow_list.yaml",
    "cron_triggers.yaml",
    "inherited_roles.yaml",
    "query_collections.yaml",
    "remote_schemas.yaml",
    "rest_endpoints.yaml",
}
MAPPING_FILES = {"api_limits.yaml", "graphql_schema_introspection.yaml", "network.yaml"}

SOURCE_KEYS = {
    "name", "kind", "configuration", "tables", "functions", "customization", "health_check", "query_tags",
    "logical_models", "native_queries", "stored_procedures",
}  # fmt: skip
CONNECTION_INFO_KEYS = {
    "database_url", "pool_settings", "use_prepared_statements", "isolation_level", "ssl_configuration",
}  # fmt: skip
POOL_SETTINGS_KEYS = {
    "max_connections", "total_max_connections", "idle_timeout", "retries", "pool_timeout", "connection_lifetime",
}  # fmt: skip
TABLE_KEYS = {
    "table", "configuration", "is_enum", "object_relationships", "array_relationships", "computed_fields",
    "remote_relationships", "insert_permissions", "select_permissions", "update_permissions",
    "delete_permissions", "event_triggers", "apollo_federation_config",
}  # fmt: skip
PERMISSION_KEYS = {
    "insert": ({"check"}, {"check", "set", "columns", "backend_only", "validate_input"}),
    "select": (
        {"columns", "filter"},
        {"columns", "computed_fields", "filter", "limit", "allow_aggregations", "query_root_fields",
         "subscription_root_fields"},
    ),
    "update": ({"columns", "filter"}, {"columns", "filter", "check", "set", "backend_only", "validate_input"}),
    "delete": ({"filter"}, {"filter", "backend_only", "validate_input"}),
}  # fmt: skip
EVENT_TRIGGER_KEYS = {
    "name", "definition", "retry_conf", "webhook", "webhook_from_env", "headers", "request_transform",
    "response_transform", "cleanup_config", "trigger_on_replication",
}  # fmt: skip
ACTION_DEFINITION_KEYS = {
    "kind", "handler", "forward_client_headers", "headers", "timeout", "request_transform", "response_transform",
}  # fmt: skip


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return load_metadata()


def _tables(metadata: dict[str, Any]) -> list[tuple[TableRef, dict[str, Any]]]:
    return list(iter_tables(metadata))


# --- The loader ---------------------------------------------------------------------------------------------


def test_include_resolution_follows_the_cli(tmp_path: Path) -> None:
    (tmp_path / "default" / "tables").mkdir(parents=True)
    (tmp_path / "databases.yaml").write_text(
        '- name: default\n  tables: "!include default/tables/tables.yaml"\n  other: !include default/x.yaml\n'
    )
    (tmp_path / "default" / "x.yaml").write_text("plain: true\n")
    (tmp_path / "default" / "tables" / "tables.yaml").write_text(
        "- '!include public_a.yaml'\n- \"!include public_b.yaml\"\n"
    )
    (tmp_path / "default" / "tables" / "public_a.yaml").write_text("table: {name: a, schema: public}\n")
    (tmp_path / "default" / "tables" / "public_b.yaml").write_text(
        "table: {name: b, schema: public}\ncomment: 'see !include docs'\n"
    )
    loaded = load_yaml_with_includes(tmp_path / "databases.yaml")
    assert loaded == [
        {
            "name": "default",
            "tables": [
                {"table": {"name": "a", "schema": "public"}},
                # A string with more than two space-separated parts is not an include, as in the CLI.
                {"table": {"name": "b", "schema": "public"}, "comment": "see !include docs"},
            ],
            "other": {"plain": True},
        }
    ]
    (tmp_path / "default" / "tables" / "tables.yaml").write_text("- '!include missing.yaml'\n")
    with pytest.raises(MetadataError, match="missing metadata file"):
        load_yaml_with_includes(tmp_path / "databases.yaml")


# --- Files ----------------------------------------------------------------------------------------------------


def test_directory_has_exactly_the_exported_files() -> None:
    tables_dir = METADATA_DIR / "databases" / "default" / "tables"
    present = {str(path.relative_to(METADATA_DIR)) for path in METADATA_DIR.rglob("*") if path.is_file()}
    table_files = {str(path.relative_to(METADATA_DIR)) for path in tables_dir.glob("*.yaml")}
    assert present - table_files == EXPORTED_FILES
    included = {
        str(path.relative_to(METADATA_DIR.resolve()))
        for path in included_files(METADATA_DIR / "databases" / "databases.yaml")
    }
    assert included == table_files, "every table file is included exactly from tables.yaml"


def test_empty_files_have_the_exported_shape(metadata: dict[str, Any]) -> None:
    import yaml

    for name in SEQUENCE_FILES:
        assert isinstance(yaml.safe_load((METADATA_DIR / name).read_text()), list), name
    for name in MAPPING_FILES:
        assert isinstance(yaml.safe_load((METADATA_DIR / name).read_text()), dict), name
    assert metadata["remote_schemas"] == []
    assert metadata["cron_triggers"] == []
    assert metadata["inherited_roles"] == []


def test_version_and_source(metadata: dict[str, Any]) -> None:
    assert metadata["version"] == 3
    assert [s["name"] for s in metadata["sources"]] == ["default"]  # == migrations/default, seeds/default
    source = metadata["sources"][0]
    assert set(source) <= SOURCE_KEYS
    assert source["kind"] == "postgres"
    info = source["configuration"]["connection_info"]
    assert set(info) <= CONNECTION_INFO_KEYS
    assert info["database_url"] == {"from_env": "PG_DATABASE_URL"}
    assert info["isolation_level"] in {"read-committed", "repeatable-read", "serializable"}
    assert isinstance(info["use_prepared_statements"], bool)
    assert set(info["pool_settings"]) <= POOL_SETTINGS_KEYS
    assert all(isinstance(v, int) and v >= 0 for v in info["pool_settings"].values())


def test_table_files_are_named_after_their_table() -> None:
    tables_dir = METADATA_DIR / "databases" / "default" / "tables"
    for path in tables_dir.glob("public_*.yaml"):
        table = TableRef.from_metadata(load_yaml_with_includes(path)["table"])
        assert path.name == f"{table.schema}_{table.name}.yaml"


def test_edge_schema_is_not_tracked(metadata: dict[str, Any]) -> None:
    assert {table.schema for table, _ in _tables(metadata)} == {"public"}


# --- Tables, relationships, permissions (shape) ---------------------------------------------------------------


def test_table_and_permission_keys(metadata: dict[str, Any]) -> None:
    for table, entry in _tables(metadata):
        assert set(entry) <= TABLE_KEYS, f"{table}: unknown keys {set(entry) - TABLE_KEYS}"
        for kind in ("object", "array"):
            names = [rel["name"] for rel in entry.get(f"{kind}_relationships", [])]
            for rel in entry.get(f"{kind}_relationships", []):
                assert set(rel) <= {"name", "using", "comment"}
                assert len(rel["using"]) == 1
                assert set(rel["using"]) <= {"foreign_key_constraint_on", "manual_configuration"}
            assert len(names) == len(set(names))
        for kind, (required, allowed) in PERMISSION_KEYS.items():
            entries = entry.get(f"{kind}_permissions", [])
            assert len({p["role"] for p in entries}) == len(entries), f"{table}: duplicate role in {kind}"
            for permission in entries:
                assert set(permission) <= {"role", "permission", "comment"}
                keys = set(permission["permission"])
                assert required <= keys <= allowed, f"{table} {kind} {permission['role']}: {keys}"


def test_every_role_is_user_or_anonymous(metadata: dict[str, Any]) -> None:
    assert roles(metadata) <= ALLOWED_ROLES
    assert roles(metadata) == ALLOWED_ROLES


def test_anonymous_reads_only_the_catalog(metadata: dict[str, Any]) -> None:
    anonymous = {
        str(table)
        for table, entry in _tables(metadata)
        for kind in ("insert", "select", "update", "delete")
        for permission in entry.get(f"{kind}_permissions", [])
        if permission["role"] == "anonymous"
    }
    assert anonymous == {"public.products", "public.warehouses", "public.inventory"}


def test_select_limits(metadata: dict[str, Any]) -> None:
    limits = select_permission_limits(metadata)
    for table, per_role in limits.items():
        assert all(isinstance(limit, int) and limit > 0 for limit in per_role.values()), table
        if {"anonymous", "user"} <= set(per_role):
            assert per_role["anonymous"] <= per_role["user"]
    catalog = {TableRef("public", name) for name in ("products", "warehouses", "inventory")}
    for table in catalog:
        assert set(limits[table]) == {"anonymous", "user"}


def test_no_permissions_on_the_idempotency_store(metadata: dict[str, Any]) -> None:
    entry = dict(_tables(metadata))[TableRef("public", "payment_idempotency")]
    assert not any(entry.get(f"{kind}_permissions") for kind in PERMISSION_KEYS)


def _permission(metadata: dict[str, Any], table: str, kind: str, role: str) -> dict[str, Any]:
    entry = dict(_tables(metadata))[TableRef("public", table)]
    return next(p["permission"] for p in entry.get(f"{kind}_permissions", []) if p["role"] == role)


def test_ownership_rules(metadata: dict[str, Any]) -> None:
    own = {"user_id": {"_eq": "X-Hasura-User-Id"}}
    assert _permission(metadata, "orders", "select", "user")["filter"] == own
    assert _permission(metadata, "payments", "select", "user")["filter"] == own
    insert_order = _permission(metadata, "orders", "insert", "user")
    assert insert_order["check"] == own
    assert {k: v.lower() for k, v in insert_order["set"].items()} == {"user_id": "x-hasura-user-id"}
    assert "user_id" not in insert_order["columns"]
    assert "total" not in insert_order["columns"] and "status" not in insert_order["columns"]
    insert_item = _permission(metadata, "order_items", "insert", "user")
    assert "order" in insert_item["check"]
    assert "unit_price" not in insert_item["columns"]
    insert_document = _permission(metadata, "documents", "insert", "user")
    assert {k: v.lower() for k, v in insert_document["set"].items()} == {"owner_id": "x-hasura-user-id"}
    assert "owner_id" not in insert_document["columns"]
    assert _permission(metadata, "users", "select", "user")["filter"] == {"id": {"_eq": "X-Hasura-User-Id"}}


def _walk_session_values(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for value in node.values():
            found |= _walk_session_values(value)
    elif isinstance(node, list):
        for value in node:
            found |= _walk_session_values(value)
    elif isinstance(node, str) and node.lower().startswith("x-hasura-"):
        found.add(node.lower())
    return found


def test_permissions_only_use_session_variables_the_edge_sets(metadata: dict[str, Any]) -> None:
    used: set[str] = set()
    for _, entry in _tables(metadata):
        for kind in PERMISSION_KEYS:
            for permission in entry.get(f"{kind}_permissions", []):
                used |= _walk_session_values(permission["permission"])
    assert used == SESSION_VARIABLES


# --- Event triggers -------------------------------------------------------------------------------------------


def _triggers(metadata: dict[str, Any]) -> dict[str, tuple[TableRef, dict[str, Any]]]:
    found: dict[str, tuple[TableRef, dict[str, Any]]] = {}
    for table, entry in _tables(metadata):
        for trigger in entry.get("event_triggers", []):
            assert trigger["name"] not in found, f"duplicate trigger name {trigger['name']}"
            found[trigger["name"]] = (table, trigger)
    return found


def test_event_triggers(metadata: dict[str, Any]) -> None:
    triggers = _triggers(metadata)
    assert {
        name: (str(table), set(trigger["definition"]) - {"enable_manual"})
        for name, (table, trigger) in triggers.items()
    } == {
        "documents_history": ("public.documents", {"update"}),
        "inventory_low_stock": ("public.inventory", {"update"}),
        "order_created": ("public.orders", {"insert"}),
    }
    for name, (_, trigger) in triggers.items():
        assert TRIGGER_NAME.match(name), name
        assert len(name) <= 42, "Hasura limits trigger names to 42 characters"
        assert set(trigger) <= EVENT_TRIGGER_KEYS
        assert set(trigger["definition"]) <= {"insert", "update", "delete", "enable_manual"}
        for op in ("insert", "update", "delete"):
            if op in trigger["definition"]:
                spec = trigger["definition"][op]
                assert set(spec) <= {"columns", "payload"} and "columns" in spec
                assert spec["columns"] == "*" or (isinstance(spec["columns"], list) and spec["columns"])
        retry = trigger["retry_conf"]
        assert set(retry) == {"num_retries", "interval_sec", "timeout_sec"}
        assert all(isinstance(v, int) and not isinstance(v, bool) for v in retry.values())
        assert retry["num_retries"] >= 1 and retry["interval_sec"] >= 1 and retry["timeout_sec"] >= 1
        assert "webhook_from_env" not in trigger
        assert trigger["webhook"] == "{{ACTIONS_BASE_URL}}/events/" + name
        assert trigger["headers"] == [{"name": "X-Hasura-Webhook-Secret", "value_from_env": "ACTIONS_WEBHOOK_SECRET"}]


# --- Actions ------------------------------------------------------------------------------------------------


def test_actions_yaml_is_in_export_form(metadata: dict[str, Any]) -> None:
    assert [action["name"] for action in metadata["actions"]] == ["processPayment"]
    for action in metadata["actions"]:
        assert set(action) <= {"name", "definition", "permissions", "comment"}
        definition = action["definition"]
        # The CLI strips arguments / type / output_type on export: the signature lives in actions.graphql.
        assert set(definition) <= ACTION_DEFINITION_KEYS
        assert definition["kind"] == "synchronous"
        assert definition["handler"] == "{{ACTIONS_BASE_URL}}/actions/" + action["name"]
        assert definition["headers"] == [{"name": "X-Hasura-Action-Secret", "value_from_env": "ACTIONS_WEBHOOK_SECRET"}]
        assert isinstance(definition["timeout"], int) and 1 <= definition["timeout"] <= 30
        assert action["permissions"] == [{"role": "user"}]
    custom = metadata["custom_types"]
    assert set(custom) == {"enums", "input_objects", "objects", "scalars"}
    for entries in custom.values():
        for entry in entries:
            assert set(entry) <= {"name", "description", "relationships"}, "fields are stripped on export"


def test_actions_graphql_matches_actions_yaml(metadata: dict[str, Any]) -> None:
    sdl = load_actions_sdl()
    schema = actions_schema(sdl)
    mutation = schema.mutation_type
    assert mutation is not None
    query_fields = set(schema.query_type.fields) - {"_unused"} if schema.query_type else set()
    assert {a["name"] for a in metadata["actions"]} == set(mutation.fields) | query_fields
    custom = metadata["custom_types"]
    inputs = {name for name, t in schema.type_map.items() if isinstance(t, GraphQLInputObjectType)}
    objects = {
        name
        for name, t in schema.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__") and name not in {"Query", "Mutation"}
    }
    assert {t["name"] for t in custom["input_objects"]} == inputs
    assert {t["name"] for t in custom["objects"]} == objects
    assert custom["enums"] == [] and custom["scalars"] == []
    assert undeclared_type_names(sdl) <= {"uuid", "numeric", "timestamptz", "jsonb", "bigint", "bpchar"}


def test_process_payment_signature() -> None:
    schema = actions_schema(load_actions_sdl())
    field = schema.mutation_type.fields["processPayment"]
    assert list(field.args) == ["input"]
    assert str(field.args["input"].type) == "ProcessPaymentInput!"
    input_type = schema.type_map["ProcessPaymentInput"]
    assert {name: str(f.type) for name, f in input_type.fields.items()} == {
        "orderId": "uuid!",
        "amount": "numeric!",
        "currency": "String!",
        "idempotencyKey": "String!",
    }
    result = schema.type_map["PaymentResult"]
    fields = {name: str(f.type) for name, f in result.fields.items()}
    assert fields["idempotentReplay"] == "Boolean!"
    assert {"paymentId", "orderId", "status", "amount", "currency", "providerReference"} <= set(fields)


# --- Query collections, allow list, README --------------------------------------------------------------------


def test_query_collections_parse_and_are_allow_listed(metadata: dict[str, Any]) -> None:
    names = set()
    for collection in metadata["query_collections"]:
        assert set(collection) == {"name", "definition"}
        names.add(collection["name"])
        queries = collection["definition"]["queries"]
        assert len({q["name"] for q in queries}) == len(queries)
        for query in queries:
            assert set(query) == {"name", "query"}
            operations = [d for d in parse(query["query"]).definitions if isinstance(d, OperationDefinitionNode)]
            assert len(operations) == 1 and operations[0].name is not None
            assert operations[0].name.value == query["name"]
    for entry in metadata["allowlist"]:
        assert set(entry) <= {"collection", "scope"}
        assert entry["collection"] in names


def test_readme_documents_every_environment_variable() -> None:
    text = "\n".join(
        path.read_text(encoding="utf-8") for path in METADATA_DIR.rglob("*") if path.suffix in {".yaml", ".graphql"}
    )
    templated = set(re.findall(r"\{\{([A-Z0-9_]+)\}\}", text))
    from_env = set(re.findall(r"(?:value_from_env|from_env|webhook_from_env|url_from_env):\s*([A-Z0-9_]+)", text))
    variables = templated | from_env
    assert variables == {"PG_DATABASE_URL", "ACTIONS_BASE_URL", "ACTIONS_WEBHOOK_SECRET"}
    readme = (METADATA_DIR.parent / "README.md").read_text(encoding="utf-8")
    for variable in variables:
        assert f"`{variable}`" in readme, variable
        assert not variable.startswith("HASURA_GRAPHQL_"), "source env vars must not use Hasura's own prefix"
