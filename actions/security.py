"""Shared-secret checks for calls from Hasura. Constant-time comparison; 401 in the action error shape.

Actions carry ``X-Hasura-Action-Secret`` and event triggers ``X-Hasura-Webhook-Secret`` (both set from
``ACTIONS_WEBHOOK_SECRET`` in hasura/metadata). The check is a router-level dependency, so it runs before
the body is parsed and before any handler can write. Both appear in OpenAPI as API-key schemes.

FastAPI decodes a JSON body before it runs dependencies, so a malformed body would otherwise get a 400
before the secret is looked at. ``SharedSecretGuard`` therefore checks the header first, as a pure ASGI
stage, without reading the body; the route dependencies check again (and document the header).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Receive, Scope, Send

from actions.error_responses import send_error
from actions.errors import Unauthorized

__all__ = [
    "ACTION_SECRET_HEADER",
    "PROTECTED_PREFIXES",
    "SharedSecretGuard",
    "WEBHOOK_SECRET_HEADER",
    "VerifiedAction",
    "VerifiedEvent",
    "secret_matches",
    "verify_action_secret",
    "verify_event_secret",
]

ACTION_SECRET_HEADER = "X-Hasura-Action-Secret"
WEBHOOK_SECRET_HEADER = "X-Hasura-Webhook-Secret"

_action_header = APIKeyHeader(name=ACTION_SECRET_HEADER, scheme_name="HasuraActionSecret", auto_error=False)
_event_header = APIKeyHeader(name=WEBHOOK_SECRET_HEADER, scheme_name="HasuraWebhookSecret", auto_error=False)


def secret_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of the UTF-8 bytes; a missing header never matches."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _expected(request: Request) -> str:
    secret: str = request.app.state.resources.settings.webhook_secret.get_secret_value()
    return secret


def verify_action_secret(request: Request, secret: Annotated[str | None, Security(_action_header)]) -> None:
    if not secret_matches(secret, _expected(request)):
        raise Unauthorized(f"missing or invalid {ACTION_SECRET_HEADER} header")


def verify_event_secret(request: Request, secret: Annotated[str | None, Security(_event_header)]) -> None:
    if not secret_matches(secret, _expected(request)):
        raise Unauthorized(f"missing or invalid {WEBHOOK_SECRET_HEADER} header")


VerifiedAction = Depends(verify_action_secret)
VerifiedEvent = Depends(verify_event_secret)


PROTECTED_PREFIXES: dict[str, str] = {"/actions/": ACTION_SECRET_HEADER, "/events/": WEBHOOK_SECRET_HEADER}


class SharedSecretGuard:
    """Answers 401 (Hasura error shape) to any request under a protected prefix whose secret header is
    missing or wrong, before the body is read. Other paths pass through untouched."""

    def __init__(self, app: ASGIApp, *, secret: str, prefixes: dict[str, str] | None = None) -> None:
        self.app = app
        self.secret = secret
        self.prefixes = [
            (prefix, header, header.lower().encode("latin-1"))
            for prefix, header in (prefixes or PROTECTED_PREFIXES).items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        for prefix, header, raw_name in self.prefixes:
            if path.startswith(prefix):
                presented = next((value for name, value in scope["headers"] if name == raw_name), None)
                text = presented.decode("latin-1") if presented is not None else None
                if not secret_matches(text, self.secret):
                    return await _send_unauthorized(send, header)
                break
        await self.app(scope, receive, send)


async def _send_unauthorized(send: Send, header: str) -> None:
    await send_error(send, Unauthorized(f"missing or invalid {header} header"))
