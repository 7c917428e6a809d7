"""The service matches hasura/metadata: action SDL field by field, handler URLs, headers, trigger routes.
Also: OpenAPI lists every route with its real status codes."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
import yaml
from graphql import parse
from graphql.language import (
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    TypeNode,
)
from pydantic import BaseModel

from actions.app import create_app
from actions.hasura import PaymentResult, ProcessPaymentArgs, ProcessPaymentInput
from actions.security import ACTION_SECRET_HEADER, WEBHOOK_SECRET_HEADER
from actions.settings import ActionsSettings
from tests.support.migrations import REPO_ROOT

METADATA = REPO_ROOT / "hasura" / "metadata"
ACTIONS_GRAPHQL = METADATA / "actions.graphql"
ACTIONS_YAML = METADATA / "actions.yaml"
TABLES = METADATA / "databases" / "default" / "tables"

needs_metadata = pytest.mark.skipif(
    not ACTIONS_GRAPHQL.exists(), reason="hasura/metadata/actions.graphql not written yet"
)

# Hasura scalar in the SDL -> the Python types our models may use for it.
SCALARS: dict[str, set[str]] = {
    "uuid": {"UUID"},
    "numeric": {"Decimal"},
    "String": {"str"},
    "Boolean": {"bool"},
    "timestamptz": {"datetime"},
    "Int": {"int"},
    "Float": {"float", "Decimal"},
}


def sdl_types() -> dict[str, Any]:
    document = parse(ACTIONS_GRAPHQL.read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for definition in document.definitions:
        if isinstance(definition, ObjectTypeDefinitionNode | InputObjectTypeDefinitionNode):
            # `type Mutation` may appear several times in an exported actions.graphql.
            found.setdefault(definition.name.value, []).extend(definition.fields or ())
    return found


def describe(node: TypeNode) -> tuple[str, bool]:
    required = isinstance(node, NonNullTypeNode)
    inner = node.type if isinstance(node, NonNullTypeNode) else node
    return inner.name.value, required  # type: ignore[attr-defined]


def python_shape(model: type[BaseModel], field: str) -> tuple[set[str], bool]:
    info = model.model_fields[field]
    annotation = info.annotation
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    names = {getattr(arg, "__name__", str(arg)) for arg in args if arg is not type(None)}
    nullable = type(None) in args
    if typing.get_origin(annotation) is typing.Literal:
        names = {"str"}
    return names, not nullable


def assert_model_matches(
    model: type[BaseModel], fields: list[FieldDefinitionNode] | list[InputValueDefinitionNode]
) -> None:
    sdl = {field.name.value: describe(field.type) for field in fields}
    assert set(model.model_fields) == set(sdl), f"{model.__name__} fields differ from the SDL"
    for name, (scalar, required) in sdl.items():
        python_types, python_required = python_shape(model, name)
        assert python_types <= SCALARS[scalar], f"{model.__name__}.{name}: {python_types} is not {scalar}"
        if model is PaymentResult:
            # Output: a non-null SDL field must never be None in our output, and a nullable one may be.
            assert python_required == required, f"{model.__name__}.{name} nullability"
        else:
            # Input: Hasura enforces non-null before calling us; we require exactly those.
            assert model.model_fields[name].is_required() == required, f"{model.__name__}.{name}"


@needs_metadata
def test_process_payment_signature_matches_the_sdl() -> None:
    types_ = sdl_types()
    (mutation,) = [field for field in types_["Mutation"] if field.name.value == "processPayment"]
    arguments = {arg.name.value: describe(arg.type) for arg in mutation.arguments}
    assert arguments == {"input": ("ProcessPaymentInput", True)}
    assert set(ProcessPaymentArgs.model_fields) == set(arguments)
    assert describe(mutation.type)[0] == "PaymentResult"
    assert_model_matches(ProcessPaymentInput, types_["ProcessPaymentInput"])
    assert_model_matches(PaymentResult, types_["PaymentResult"])


@needs_metadata
def test_actions_yaml_points_at_our_route_with_our_secret_header() -> None:
    config = yaml.safe_load(ACTIONS_YAML.read_text(encoding="utf-8"))
    (action,) = [a for a in config["actions"] if a["name"] == "processPayment"]
    definition = action["definition"]
    assert definition["handler"] == "{{ACTIONS_BASE_URL}}/actions/processPayment"
    assert {"name": ACTION_SECRET_HEADER, "value_from_env": "ACTIONS_WEBHOOK_SECRET"} in definition["headers"]
    assert definition.get("kind", "synchronous") == "synchronous"
    assert not definition.get("forward_client_headers", False)
    # The provider deadline must fit inside Hasura's action timeout.
    settings = ActionsSettings(database_url="postgresql://x@h/db", webhook_secret="s" * 32)
    assert settings.provider_timeout_seconds < definition.get("timeout", 30)


def event_triggers() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(TABLES.glob("*.yaml")) if TABLES.exists() else []:
        table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(table, dict):
            found.extend((path.name, trigger) for trigger in table.get("event_triggers", []))
    return found


@pytest.mark.skipif(not event_triggers(), reason="no event triggers in hasura/metadata yet")
def test_every_event_trigger_has_a_route_and_sends_our_secret() -> None:
    app = create_app(ActionsSettings(database_url="postgresql://x@h/db", webhook_secret="s" * 32))
    routes = set(app.openapi()["paths"])
    triggers = event_triggers()
    assert {trigger["name"] for _, trigger in triggers} == {"documents_history", "inventory_low_stock", "order_created"}
    for _, trigger in triggers:
        assert trigger["webhook"] == "{{ACTIONS_BASE_URL}}/events/" + trigger["name"]
        assert f"/events/{trigger['name']}" in routes
        assert {"name": WEBHOOK_SECRET_HEADER, "value_from_env": "ACTIONS_WEBHOOK_SECRET"} in trigger["headers"]


@pytest.mark.skipif(not event_triggers(), reason="no event triggers in hasura/metadata yet")
def test_trigger_payloads_carry_the_columns_the_handlers_read() -> None:
    by_name = {trigger["name"]: (file, trigger) for file, trigger in event_triggers()}
    expected = {
        "documents_history": ("public_documents.yaml", "update", {"content", "title"}),
        "inventory_low_stock": ("public_inventory.yaml", "update", {"quantity"}),
        "order_created": ("public_orders.yaml", "insert", None),
    }
    for name, (file, op, columns) in expected.items():
        found_file, trigger = by_name[name]
        assert found_file == file
        spec = trigger["definition"][op]
        assert spec.get("payload", "*") == "*", f"{name}: handlers need the whole row"
        if columns is not None:
            assert columns <= set(spec["columns"] if spec["columns"] != "*" else columns)


def test_openapi_lists_every_route_with_its_real_status_codes() -> None:
    app = create_app(ActionsSettings(database_url="postgresql://x@h/db", webhook_secret="s" * 32))
    paths = app.openapi()["paths"]
    assert set(paths) == {
        "/actions/processPayment",
        "/events/documents_history",
        "/events/inventory_low_stock",
        "/events/order_created",
        "/healthz",
        "/readyz",
    }
    payment = paths["/actions/processPayment"]["post"]
    # Hasura relays only 2xx and 4xx from an action handler: no 5xx is documented because none is sent.
    assert set(payment["responses"]) == {"200", "400", "401", "403", "404", "409", "413", "422", "424"}
    assert payment["security"] == [{"HasuraActionSecret": []}]
    for trigger in ("documents_history", "inventory_low_stock", "order_created"):
        operation = paths[f"/events/{trigger}"]["post"]
        assert {"200", "400", "401", "413", "500", "503"} <= set(operation["responses"])
        assert "422" not in operation["responses"]  # invalid payloads get 400, not FastAPI's default 422
        assert operation["security"] == [{"HasuraWebhookSecret": []}]
    assert "409" in paths["/events/documents_history"]["post"]["responses"]
