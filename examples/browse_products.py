"""Browse the catalogue with stock per warehouse, through the edge (products -> inventory -> warehouse).

    python examples/browse_products.py                 # anonymous (EDGE_UNAUTHORIZED_ROLE=anonymous)
    python examples/browse_products.py --user alice    # role user: also sees low-stock thresholds
    python examples/browse_products.py --url https://edge.example.com/graphql --ca ./my-ca.pem

Needs the stack from `docker compose up --build`. Uses the `products` table, its `inventory` array
relationship and `inventory.warehouse` (hasura/metadata/databases/default/tables/).
Talks https to the edge (default https://localhost:8000/graphql), trusting the stack's .dev-certs/ca.pem;
`--url` and `--ca` (or EDGE_URL, EDGE_CA_FILE) point it elsewhere, see examples/_client.py.
"""

from __future__ import annotations

import argparse
import sys

from _client import add_common_arguments, auth_headers, graphql, http_client, run

ANONYMOUS_QUERY = """
query BrowseProducts($limit: Int!) {
  products(order_by: {name: asc}, limit: $limit) {
    sku
    name
    price
    currency
    inventory(order_by: {warehouse: {code: asc}}) {
      quantity
      warehouse { code city }
    }
  }
}
"""

# Role user may also read inventory.low_stock_threshold.
USER_QUERY = """
query BrowseProductsAsUser($limit: Int!) {
  products(order_by: {name: asc}, limit: $limit) {
    sku
    name
    price
    currency
    inventory(order_by: {warehouse: {code: asc}}) {
      quantity
      low_stock_threshold
      warehouse { code city }
    }
  }
}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="List products with their stock, through the edge.")
    add_common_arguments(parser, default_user=None)
    parser.add_argument("--limit", type=int, default=20, help="number of products (default: 20)")
    args = parser.parse_args(argv)

    def flow() -> int:
        query = ANONYMOUS_QUERY if args.user is None else USER_QUERY
        with http_client(args.ca, timeout=10.0) as client:
            data = graphql(client, args.url, query, {"limit": args.limit}, headers=auth_headers(args.user))
        who = args.user or "anonymous"
        print(f"{len(data['products'])} products, as {who}:\n")
        for product in data["products"]:
            stock = product["inventory"]
            total = sum(row["quantity"] for row in stock)
            print(
                f"{product['sku']:<8} {product['name']:<30} {product['price']:>8} {product['currency']}  stock {total}"
            )
            for row in stock:
                warehouse = row["warehouse"]
                low = ""
                if "low_stock_threshold" in row and row["quantity"] <= row["low_stock_threshold"]:
                    low = f"  LOW (threshold {row['low_stock_threshold']})"
                print(f"    {warehouse['code']:<8} {warehouse['city'] or '':<12} {row['quantity']:>5}{low}")
        return 0

    return run(flow)


if __name__ == "__main__":
    sys.exit(main())
