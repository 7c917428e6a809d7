"""Every webhook the Hasura metadata calls resolves, with the compose environment, to a real POST route of the
actions service, carrying the shared-secret header the service checks for that route.

The URLs are built the way Hasura builds them: ``{{VAR}}`` templates (and ``*_from_env``) are replaced with the
hasura service's environment from docker-compose.yml. The actions app is created with a dummy database URL and
never started, so nothing connects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from actions.app import create_app
from actions.security import ACTION_SECRET_HEADER, PROTECTED_PREFIXES, WEBHOOK_SECRET_HEADER
from actions.settings import ActionsSettings
from tests.compose import support
from tests.support.hasura_metadata import iter_tables, load_metadata


@dataclass(frozen=True)
class Webhook:
    what: str  # "action processPayment" / "event trigger public.orders.order_created"
    url: str
    headers: tuple[dict[str, Any], ...]
    secret_header: str  # the header this kind of call must carry


def _resolve(template: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        assert env.get(name), f"{template} needs {name}, which the hasura service does not set"
        return env[name]

    return re.sub(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", replace, template)


def _url(definition: dict[str, Any], key: str, env: dict[str, str]) -> str:
    if f"{key}_from_env" in definition:
        return env[definition[f"{key}_from_env"]]
    return _resolve(str(definition[key]), env)


def _webhooks(env: dict[str, str]) -> Iterator[Webhook]:
    metadata = load_metadata()
    for action in metadata.get("actions") or []:
        definition = action["definition"]
        yield Webhook(
            f"action {action['name']}",
            _url(definition, "handler", env),
            tuple(definition.get("headers") or ()),
            ACTION_SECRET_HEADER,
        )
    for table, entry in iter_tables(metadata):
        for trigger in entry.get("event_triggers") or []:
            yield Webhook(
                f"event trigger {table}.{trigger['name']}",
                _url(trigger, "webhook", env),
                tuple(trigger.get("headers") or ()),
                WEBHOOK_SECRET_HEADER,
            )


@pytest.fixture(scope="module")
def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = support.load()["services"]
    return services


@pytest.fixture(scope="module")
def webhooks(compose_services: dict[str, Any]) -> list[Webhook]:
    found = list(_webhooks(support.environment(compose_services["hasura"])))
    assert found, "the metadata calls no webhook at all?"
    return found


SECRET = "a-test-secret-that-is-long-enough"


@pytest.fixture(scope="module")
def actions_app() -> FastAPI:
    settings = ActionsSettings(database_url="postgresql://unused:unused@127.0.0.1:1/unused", webhook_secret=SECRET)
    app = create_app(settings)
    # What the lifespan would provide, minus the database: enough for the secret check and body validation.
    app.state.resources = SimpleNamespace(settings=settings)
    return app


@pytest.fixture(scope="module")
def post_routes(actions_app: FastAPI) -> set[str]:
    """POST paths from the app's OpenAPI document (FastAPI's public view of its routes)."""
    paths: dict[str, dict[str, Any]] = actions_app.openapi()["paths"]
    return {path for path, operations in paths.items() if "post" in operations}


def test_every_webhook_is_a_post_route_of_the_actions_service(
    webhooks: list[Webhook], post_routes: set[str], compose_services: dict[str, Any]
) -> None:
    actions_port = support.environment(compose_services["actions"])["ACTIONS_PORT"]
    for hook in webhooks:
        url = urlsplit(hook.url)
        assert (url.scheme, url.hostname, str(url.port)) == ("http", "actions", actions_port), hook
        assert url.path in post_routes, f"{hook.what}: no POST {url.path} in the actions app ({sorted(post_routes)})"
        assert not url.query and not url.fragment


def test_every_webhook_route_of_the_actions_service_is_called(webhooks: list[Webhook], post_routes: set[str]) -> None:
    called = {urlsplit(hook.url).path for hook in webhooks}
    protected = {path for path in post_routes if path.startswith(tuple(PROTECTED_PREFIXES))}
    assert protected == called, "actions routes without a caller in the metadata, or the reverse"


def test_every_webhook_sends_the_secret_header_the_service_checks(
    webhooks: list[Webhook], compose_services: dict[str, Any]
) -> None:
    hasura_env = support.environment(compose_services["hasura"])
    actions_secret = support.environment(compose_services["actions"])["ACTIONS_WEBHOOK_SECRET"]
    for hook in webhooks:
        path = urlsplit(hook.url).path
        guarded_by = next(header for prefix, header in PROTECTED_PREFIXES.items() if path.startswith(prefix))
        assert guarded_by == hook.secret_header, f"{hook.what}: {path} is guarded by {guarded_by}"
        sent = {header["name"].lower(): header for header in hook.headers}
        assert hook.secret_header.lower() in sent, f"{hook.what} does not send {hook.secret_header}"
        header = sent[hook.secret_header.lower()]
        value = hasura_env[header["value_from_env"]] if "value_from_env" in header else header.get("value")
        assert value == actions_secret, f"{hook.what}: the {hook.secret_header} value is not the actions' secret"
        assert "value" not in header, "a literal secret in metadata would be committed to git"


def test_the_running_app_answers_each_webhook_path(webhooks: list[Webhook], actions_app: FastAPI) -> None:
    """Beyond OpenAPI: a request routed the way Hasura sends it reaches the handler (an empty body is then
    refused as invalid: 400), a wrong secret is refused (401), and the path does not answer GET (405)."""
    client = TestClient(actions_app, raise_server_exceptions=True)  # no lifespan: nothing connects
    try:
        for hook in webhooks:
            path = urlsplit(hook.url).path
            good = client.post(path, json={}, headers={hook.secret_header: SECRET})
            assert good.status_code == 400, (hook.what, good.status_code, good.text)
            assert good.json()["extensions"]["code"] == "VALIDATION_FAILED"
            bad = client.post(path, json={}, headers={hook.secret_header: SECRET + "x"})
            assert bad.status_code == 401, (hook.what, bad.status_code)
            assert client.get(path, headers={hook.secret_header: SECRET}).status_code == 405
    finally:
        client.close()
