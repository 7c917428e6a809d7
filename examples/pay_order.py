"""Alice pays her order that awaits payment, through the edge, then replays the same request.

    python examples/pay_order.py
    python examples/pay_order.py --idempotency-key my-key-1 --order-id cccccccc-0000-4000-8000-000000000001

Steps: list the user's orders with status awaiting_payment (with items and products), call the
processPayment action (hasura/metadata/actions.graphql) with an idempotency key, call it again with
the same key and input (the actions service returns the stored result, idempotentReplay: true, and
charges nothing), then read the order and its payments again.

The seeded order cccccccc-0000-4000-8000-000000000001 (148.00 USD) can be paid once; to pay it again,
reset the demo data: `docker compose down -v && docker compose up --build`.
Needs the stack from `docker compose up --build`.
Talks https to the edge (default https://localhost:8000/graphql), trusting the stack's .dev-certs/ca.pem;
`--url` and `--ca` (or EDGE_URL, EDGE_CA_FILE) point it elsewhere, see examples/_client.py.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from _client import add_common_arguments, auth_headers, graphql, http_client, run, show

AWAITING_ORDERS = """
query AwaitingOrders {
  orders(where: {status: {_eq: "awaiting_payment"}}, order_by: {created_at: asc}) {
    id
    status
    total
    currency
    items { quantity unit_price product { name } }
  }
}
"""

PROCESS_PAYMENT = """
mutation Pay($input: ProcessPaymentInput!) {
  processPayment(input: $input) {
    paymentId
    orderId
    status
    orderStatus
    amount
    currency
    providerReference
    idempotentReplay
    createdAt
  }
}
"""

ORDER_AFTER = """
query OrderAfterPayment($id: uuid!) {
  orders_by_pk(id: $id) {
    id
    status
    total
    payments(order_by: {created_at: asc}) { id status amount currency provider_reference }
  }
}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pay an order with processPayment, then replay it.")
    add_common_arguments(parser, default_user="alice")
    parser.add_argument("--order-id", help="order to pay (default: the user's first order awaiting payment)")
    parser.add_argument("--idempotency-key", help="idempotency key (default: a new random one)")
    args = parser.parse_args(argv)

    def flow() -> int:
        headers = auth_headers(args.user)
        with http_client(args.ca, timeout=30.0) as client:
            orders = graphql(client, args.url, AWAITING_ORDERS, headers=headers)["orders"]
            show(f"{args.user}'s orders awaiting payment", orders)
            order: dict[str, Any] | None = next(
                (item for item in orders if args.order_id in (None, item["id"])),
                None,
            )
            if order is None:
                print(
                    f"\nnothing to pay: {args.user} has no order awaiting payment"
                    + (f" with id {args.order_id}" if args.order_id else "")
                    + ". Reset the demo data with `docker compose down -v && docker compose up --build`."
                )
                return 0

            payment_input = {
                "orderId": order["id"],
                "amount": order["total"],
                "currency": order["currency"],
                "idempotencyKey": args.idempotency_key or f"demo-{uuid.uuid4()}",
            }
            show("processPayment input", payment_input)
            first = graphql(client, args.url, PROCESS_PAYMENT, {"input": payment_input}, headers=headers)
            show("first call", first["processPayment"])
            replay = graphql(client, args.url, PROCESS_PAYMENT, {"input": payment_input}, headers=headers)
            show("replay with the same idempotency key", replay["processPayment"])

            first_id = first["processPayment"]["paymentId"]
            replay_id = replay["processPayment"]["paymentId"]
            same = "the same payment" if first_id == replay_id else "A DIFFERENT PAYMENT (unexpected)"
            print(f"\nreplay returned {same}; idempotentReplay={replay['processPayment']['idempotentReplay']}")

            after = graphql(client, args.url, ORDER_AFTER, {"id": order["id"]}, headers=headers)
            show("the order afterwards", after["orders_by_pk"])
        return 0

    return run(flow)


if __name__ == "__main__":
    sys.exit(main())
