"""Shared plumbing for the example scripts: one GraphQL-over-HTTP call through the edge, and printing.

Not a script. The examples talk to the edge only (default https://localhost:8000/graphql, or EDGE_URL);
Hasura, Postgres and the actions service are not reachable from the host in the compose setup.

TLS: the compose stack serves https/wss with a development CA it writes to .dev-certs/ca.pem on first start.
The scripts trust, on top of the system's CAs, the file given with --ca, else EDGE_CA_FILE, else
.dev-certs/ca.pem when it exists. Certificate checks are never switched off.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
from pathlib import Path
from typing import Any

import httpx
from mint_token import USERS, mint_token

DEFAULT_URL = os.environ.get("EDGE_URL", "https://localhost:8000/graphql")
# Written by the compose stack's edge-certs service (docker-compose.yml) into the repository.
DEV_CA_FILE = Path(__file__).resolve().parent.parent / ".dev-certs" / "ca.pem"
CA_HINT = "start the stack first (`docker compose up`) so .dev-certs/ca.pem exists, or pass --ca / EDGE_CA_FILE"


class GraphQLFailure(Exception):
    """The edge or Hasura answered with errors (or not with GraphQL at all)."""


def default_ca_file() -> str | None:
    """EDGE_CA_FILE when set, else .dev-certs/ca.pem when the compose stack has written it, else None."""
    configured = os.environ.get("EDGE_CA_FILE")
    if configured:
        return configured
    return str(DEV_CA_FILE) if DEV_CA_FILE.is_file() else None


def add_common_arguments(
    parser: argparse.ArgumentParser, *, default_user: str | None, default_url: str = DEFAULT_URL
) -> None:
    parser.add_argument("--url", default=default_url, help=f"edge GraphQL endpoint (default: {default_url})")
    parser.add_argument(
        "--ca",
        default=default_ca_file(),
        help="PEM file with a CA to trust for https/wss, besides the system's "
        "(default: $EDGE_CA_FILE, else .dev-certs/ca.pem when it exists)",
    )
    users = sorted(USERS)
    if default_user is None:
        parser.add_argument("--user", choices=users, help="act as this demo user (default: anonymous)")
    else:
        parser.add_argument("--user", choices=users, default=default_user, help=f"demo user (default: {default_user})")


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trusted CAs plus ``ca_file``; hostname and certificate checks stay on."""
    context = ssl.create_default_context()
    if ca_file is not None:
        if not Path(ca_file).is_file():
            raise SystemExit(f"--ca / EDGE_CA_FILE: {ca_file} is not a file")
        context.load_verify_locations(cafile=ca_file)
    return context


def http_client(ca_file: str | None, *, timeout: float = 10.0) -> httpx.Client:
    """An httpx client that verifies the edge's certificate against :func:`tls_context`."""
    return httpx.Client(timeout=timeout, verify=tls_context(ca_file))


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
        if "CERTIFICATE_VERIFY_FAILED" in str(error):
            print(f"the edge's certificate is not trusted ({error}): {CA_HINT}", file=sys.stderr)
            return 1
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
