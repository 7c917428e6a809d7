"""Bob edits the shared "Launch plan" document through the edge, then reads its history.

    python examples/edit_document.py
    python examples/edit_document.py --user alice --line "- Write the runbook"
    python examples/edit_document.py --user carol     # a viewer: the update changes nothing

Steps: read the document (documents_by_pk), append a line to its content (update_documents_by_pk;
the database bumps `version`), then poll the document's `history` relationship until the
documents_history event trigger has recorded the new version (the actions service writes it
asynchronously, usually within a second or two), and print the diff.

Needs the stack from `docker compose up --build`.
Talks https to the edge (default https://localhost:8000/graphql), trusting the stack's .dev-certs/ca.pem;
`--url` and `--ca` (or EDGE_URL, EDGE_CA_FILE) point it elsewhere, see examples/_client.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from _client import add_common_arguments, auth_headers, graphql, http_client, run, show

SHARED_DOCUMENT = "dddddddd-0000-4000-8000-000000000001"

READ_DOCUMENT = """
query ReadDocument($id: uuid!) {
  documents_by_pk(id: $id) { id title version content owner_id updated_at }
}
"""

EDIT_DOCUMENT = """
mutation EditDocument($id: uuid!, $content: String!) {
  update_documents_by_pk(pk_columns: {id: $id}, _set: {content: $content}) { id title version updated_at }
}
"""

HISTORY = """
query DocumentHistory($id: uuid!) {
  documents_by_pk(id: $id) {
    id
    title
    version
    history(order_by: {version: desc}, limit: 5) { version author_id diff created_at }
  }
}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Edit a document, then read its history.")
    add_common_arguments(parser, default_user="bob")
    parser.add_argument("--document-id", default=SHARED_DOCUMENT, help=f"document (default: {SHARED_DOCUMENT})")
    parser.add_argument("--line", help="line to append (default: a timestamped note)")
    parser.add_argument("--wait", type=float, default=15.0, help="seconds to wait for the history row (default: 15)")
    args = parser.parse_args(argv)

    def flow() -> int:
        headers = auth_headers(args.user)
        variables = {"id": args.document_id}
        with http_client(args.ca, timeout=10.0) as client:
            document = graphql(client, args.url, READ_DOCUMENT, variables, headers=headers)["documents_by_pk"]
            if document is None:
                print(f"{args.user} cannot see document {args.document_id} (or it does not exist)")
                return 1
            show("before", document)

            line = args.line or f"- Note from {args.user} at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
            content = document["content"].rstrip("\n") + "\n" + line + "\n"
            edited = graphql(client, args.url, EDIT_DOCUMENT, {**variables, "content": content}, headers=headers)[
                "update_documents_by_pk"
            ]
            if edited is None:
                # Hasura answers null when the update permission's filter excludes the row.
                print(f"\n{args.user} may read but not edit this document: nothing changed")
                return 1
            show("after the update", edited)

            version = edited["version"]
            deadline = time.monotonic() + args.wait
            while True:
                history = graphql(client, args.url, HISTORY, variables, headers=headers)["documents_by_pk"]
                if any(row["version"] == version for row in history["history"]):
                    break
                if time.monotonic() > deadline:
                    print(f"\nno history row for version {version} after {args.wait:.0f}s; is the actions service up?")
                    return 1
                time.sleep(0.5)

        print(f"\n== history (newest first; version {version} written by the documents_history event trigger)")
        for row in history["history"]:
            print(f"\n-- version {row['version']} by {row['author_id']} at {row['created_at']}")
            print(row["diff"].rstrip("\n"))
        return 0

    return run(flow)


if __name__ == "__main__":
    sys.exit(main())
