"""Call the demo's RESTified endpoints through the edge: plain HTTP and JSON, no GraphQL on the client.

    python examples/rest_endpoints.py                  # as alice
    python examples/rest_endpoints.py --user bob --limit 2
    python examples/rest_endpoints.py --edit           # also PATCH alice's shared document

The endpoints are Hasura's (hasura/metadata/rest_endpoints.yaml, operations in query_collections.yaml), served
under /api/rest/ on the edge's host:

    GET   /api/rest/products?limit=N    ListProducts
    GET   /api/rest/products/:id        ProductById
    GET   /api/rest/orders              MyOrders (the caller's orders)
    PATCH /api/rest/documents/:id       UpdateDocument, JSON body {"title": ..., "content": ...}

Query-string values and :id are parsed against the operation's variable types; a JSON body gives values as they
are. Answers are the operation's data without the GraphQL envelope.

Needs the stack from `docker compose up --build`. Talks https to the edge (default https://localhost:8000, the
host of EDGE_URL / --url), trusting the stack's .dev-certs/ca.pem; see examples/_client.py.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from _client import GraphQLFailure, add_common_arguments, auth_headers, graphql, http_client, run, show

SHARED_DOCUMENT = "dddddddd-0000-4000-8000-000000000001"

READ_DOCUMENT = """
query ReadDocument($id: uuid!) {
  documents_by_pk(id: $id) { id title content version }
}
"""


def rest_base(graphql_url: str) -> str:
    """``https://host:port/api/rest`` for the edge whose GraphQL endpoint is ``graphql_url``."""
    parts = urlsplit(graphql_url)
    return f"{parts.scheme}://{parts.netloc}/api/rest"


def rest(client: httpx.Client, method: str, url: str, *, headers: dict[str, str], **kwargs: Any) -> Any:
    """One REST call; the decoded JSON, or GraphQLFailure with the error (Hasura's or the edge's shape)."""
    response = client.request(method, url, headers=headers, **kwargs)
    request_id = response.headers.get("x-request-id", "-")
    try:
        payload = response.json()
    except ValueError:
        raise GraphQLFailure(f"HTTP {response.status_code} (request {request_id}): {response.text[:300]}") from None
    if response.status_code != 200 or (isinstance(payload, dict) and ("errors" in payload or "error" in payload)):
        if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
            detail = "; ".join(
                f"{e.get('message')} [{(e.get('extensions') or {}).get('code', '?')}]"
                for e in payload["errors"]
                if isinstance(e, dict)
            )
        elif isinstance(payload, dict) and "error" in payload:
            detail = f"{payload['error']} [{payload.get('code', '?')}]"
        else:
            detail = repr(payload)
        raise GraphQLFailure(f"{method} {url}: HTTP {response.status_code} (request {request_id}): {detail}")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Call the demo's REST endpoints through the edge.")
    add_common_arguments(parser, default_user="alice")
    parser.add_argument("--limit", type=int, default=3, help="products to list (default: 3)")
    parser.add_argument("--edit", action="store_true", help="also append a line to a document with PATCH")
    parser.add_argument("--document-id", default=SHARED_DOCUMENT, help=f"document to edit (default: {SHARED_DOCUMENT})")
    args = parser.parse_args(argv)
    base = rest_base(args.url)

    def flow() -> int:
        headers = auth_headers(args.user)
        with http_client(args.ca) as client:
            products = rest(client, "GET", f"{base}/products", headers=headers, params={"limit": args.limit})
            show(f"GET /api/rest/products?limit={args.limit}", products)
            if products["products"]:
                first = products["products"][0]["id"]
                show(
                    f"GET /api/rest/products/{first}", rest(client, "GET", f"{base}/products/{first}", headers=headers)
                )
            show("GET /api/rest/orders", rest(client, "GET", f"{base}/orders", headers=headers))

            if args.edit:
                # No REST endpoint reads a document, so the current text comes from GraphQL.
                document = graphql(client, args.url, READ_DOCUMENT, {"id": args.document_id}, headers=headers)
                current = document["documents_by_pk"]
                if current is None:
                    print(f"\n{args.user} cannot see document {args.document_id}")
                    return 1
                line = f"- Edited over REST by {args.user} at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
                body = {"title": current["title"], "content": current["content"].rstrip("\n") + "\n" + line + "\n"}
                url = f"{base}/documents/{args.document_id}"
                updated = rest(client, "PATCH", url, headers=headers, json=body)
                show(f"PATCH /api/rest/documents/{args.document_id}", updated)
                if updated["update_documents_by_pk"] is None:
                    print(f"\n{args.user} may read but not edit this document: nothing changed")
                    return 1
        return 0

    return run(flow)


if __name__ == "__main__":
    sys.exit(main())
