"""What operation analysis and cost estimation cost per request, cached and uncached (in-process timings).

For a realistic 3-level query (users -> orders -> items, with a variable limit), measures with ``timeit``
(GC off, best of ``--repeat`` runs of ``--number`` calls each):

  parse                 graphql-core ``parse`` alone (the reference's ~155 µs figure)
  uncached              ``analyse()`` with no cache + a cost model with no compile cache + ``check()``:
                        what a request with a never-seen document pays
  cached                the same three calls with both caches warm: what a repeated operation pays
  parts of the cached path: analyse hit, estimate (variables + role), estimate (role only), check

and prints the ratio uncached / cached. Needs the repository root on ``sys.path`` for the double's schema
(``tests.hasura_double``) and the metadata directory; no network, no server.

    .venv/bin/python bench/analysis.py
    .venv/bin/python bench/analysis.py --number 2000 --repeat 7
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graphql import parse  # noqa: E402

from edge.graphql.analysis import make_analyser  # noqa: E402
from edge.graphql.cost import CostModel  # noqa: E402
from edge.graphql.permissions import PermissionLimits  # noqa: E402
from edge.graphql.policy import check  # noqa: E402
from edge.graphql.schema_info import SchemaInfo  # noqa: E402
from edge.plans import GraphQLLimits  # noqa: E402
from tests.hasura_double.schema import DEMO_SDL  # noqa: E402

QUERY = """
query RecentOrders($limit: Int!, $since: timestamptz) {
  users(limit: $limit, order_by: {created_at: desc}) {
    id
    name
    email
    orders(limit: 5, where: {created_at: {_gte: $since}}) {
      id
      status
      total
      currency
      items {
        id
        quantity
        unit_price
      }
    }
  }
}
"""
VARIABLES = {"limit": 10, "since": "2026-01-01T00:00:00Z"}
ROLE = "user"
LIMITS = GraphQLLimits(max_cost=100_000)


def best_us(statement: object, number: int, repeat: int) -> float:
    timer = timeit.Timer(statement)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=1000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs (the best is reported)")
    args = parser.parse_args()
    number, repeat = args.number, args.repeat

    schema = SchemaInfo.from_sdl(DEMO_SDL)
    permissions = PermissionLimits.from_metadata_dir(ROOT / "hasura" / "metadata")
    max_tokens = LIMITS.max_tokens

    cold_analyse = make_analyser(maxsize=0)  # functools.lru_cache(maxsize=0): no caching at all
    cold_model = CostModel(schema, permissions, cache_size=0)
    warm_analyse = make_analyser()
    warm_model = CostModel(schema, permissions)

    def uncached() -> None:
        analysis = cold_analyse(QUERY, "RecentOrders", max_tokens=max_tokens)
        check(analysis, cold_model.estimate(analysis, variables=VARIABLES, role=ROLE), LIMITS)

    def cached() -> None:
        analysis = warm_analyse(QUERY, "RecentOrders", max_tokens=max_tokens)
        check(analysis, warm_model.estimate(analysis, variables=VARIABLES, role=ROLE), LIMITS)

    analysis = warm_analyse(QUERY, "RecentOrders", max_tokens=max_tokens)
    role_only = warm_analyse("{ users { id orders { id items { id } } } }", None, max_tokens=max_tokens)
    cost = warm_model.estimate(analysis, variables=VARIABLES, role=ROLE)
    warm_model.estimate(role_only, role=ROLE)

    fresh = itertools.cycle([{**VARIABLES, "limit": n} for n in range(1, 10_001)])  # memo misses (256 kept)

    rows = [
        ("parse (graphql-core, no_location)", best_us(lambda: parse(QUERY, no_location=True), number // 10, repeat)),
        ("uncached: analyse + estimate + check", best_us(uncached, number // 10, repeat)),
        ("cached:   analyse + estimate + check", best_us(cached, number, repeat)),
        (
            "  analyse (cache hit)",
            best_us(lambda: warm_analyse(QUERY, "RecentOrders", max_tokens=max_tokens), number, repeat),
        ),
        (
            "  estimate (variables + role, memo hit)",
            best_us(lambda: warm_model.estimate(analysis, variables=VARIABLES, role=ROLE), number, repeat),
        ),
        (
            "  estimate (new variable values: evaluated)",
            best_us(lambda: warm_model.estimate(analysis, variables=next(fresh), role=ROLE), number, repeat),
        ),
        (
            "  estimate (role only, per-role cache)",
            best_us(lambda: warm_model.estimate(role_only, role=ROLE), number, repeat),
        ),
        ("  check", best_us(lambda: check(analysis, cost, LIMITS), number, repeat)),
    ]
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, Python {platform.python_version()}, {sys.platform}")
    print(f"# query: 3 levels (users -> orders -> items), {len(QUERY)} bytes; cost {cost} for role {ROLE!r}")
    print(f"# timeit, GC off, best of {repeat}")
    for name, micros in rows:
        print(f"{name:<44} {micros:10.2f} µs")
    print(f"{'ratio uncached / cached':<44} {rows[1][1] / rows[2][1]:10.0f} x")


if __name__ == "__main__":
    main()
