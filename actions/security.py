"""Shared-secret checks for calls from Hasura. Constant-time comparison; 401 in the action error shape.

Actions carry ``X-Hasura-Action-Secret`` and event triggers ``X-Hasura-Webhook-Secret`` (both set from
``ACTIONS_WEBHOOK_SECRET`` in hasura/metadata). The check is a router-level dependency, so it runs before
the body is parsed and before any handler can write. Both appear in OpenAPI as API-key schemes.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from actions.errors import Unauthorized

__all__ = [
    "ACTION_SECRET_HEADER",
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
