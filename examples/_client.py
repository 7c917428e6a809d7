"""Shared plumbing for the example scripts: one GraphQL-over-HTTP call through the edge, and printing.

Not a script. The examples talk to the edge only (default http://localhost:8000/graphql, or EDGE_URL);
Hasura, Postgres and the actions service are not reachable from the host in the compose setup.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx
from mint_token import USERS, mint_token

DEFAULT_URL = os.environ.get("EDGE_URL", "http://localhost:8000/graphql")


class GraphQLFailure(Exception):
    """The edge or Hasura answered with errors (or not with GraphQL at all)."""


def add_common_arguments(parser: argparse.ArgumentParser, *, default_user: str | None) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"edge GraphQL endpoint (default: {DEFAULT_URL})")
    users = sorted(USERS)
    if default_user is None:
        parser.add_argument("--user", choices=users, help="act as this demo user (default: anonymous)")
    else:
        parser.add_argument("--user", choices=users, default=default_user, help=f"demo user (default: {default_user})")


def auth_headers(user: str | None) -> dict[str, str]:
    """``Authorization: Bearer <dev token>`` for a demo user; nothing for anonymous requests."""
    return {} if user is None else {"Authorization": f"Bearer {mint_token(user)}"}


def graphql(
    client: httpx.Client,
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST one operation to the edge; return ``data`` or raise GraphQLFailure with the errors."""
    body: dict[str, Any] = {"query": query}
    if variables:
        body["variables"] = variables
    response = client.post(url, json=body, headers=headers or {})
    request_id = response.headers.get("x-request-id", "-")
    try:
        payload = response.json()
    except ValueError:
        raise GraphQLFailure(f"HTTP {response.status_code} (request {request_id}): {response.text[:300]}") from None
    if not isinstance(payload, dict):
        raise GraphQLFailure(f"HTTP {response.status_code} (request {request_id}): unexpected body {payload!r}")
    errors = payload.get("errors")
    if errors:
        lines = [
            f"- {error.get('message')} [{(error.get('extensions') or {}).get('code', '?')}]"
            for error in errors
            if isinstance(error, dict)
        ]
        raise GraphQLFailure(f"HTTP {response.status_code} (request {request_id}):\n" + "\n".join(lines))
    data = payload.get("data")
    if not isinstance(data, dict):
        raise GraphQLFailure(f"HTTP {response.status_code} (request {request_id}): no data in {payload!r}")
    return data


def run(main: Any) -> int:
    """Run ``main()``, turning connection problems and GraphQL errors into a short message and exit 1."""
    try:
        result: int = main()
    except httpx.TransportError as error:
        print(
            f"cannot reach the edge ({type(error).__name__}: {error}); is `docker compose up` running?",
            file=sys.stderr,
        )
        return 1
    except GraphQLFailure as failure:
        print(f"request failed: {failure}", file=sys.stderr)
        return 1
    return result


def show(title: str, value: Any) -> None:
    print(f"\n== {title}")
    print(json.dumps(value, indent=2))
