"""What reading a client's JSON costs: ``orjson.loads`` (the old parse) against ``edge.strict_json.loads``.

    .venv/bin/python bench/json_parse.py                  # timeit: µs per call, best of 7 repeats
    .venv/bin/python bench/json_parse.py --instructions   # callgrind: instructions per call (needs valgrind)

Times move by ±30 % on a shared 2-core box; instruction counts repeat within a few instructions, so
compare those. ``edge.strict_json`` is measured as the process imports it: the sources, interpreted, or
with ``PYTHONPATH=build/compiled`` the compiled build of ``make compile`` (the first line says which). The
bodies: the benchmarks' request (``bench/http_path.py``), a 259-byte request with two variables, one whose
document has string literals (escaped quotes), and one with a double among its variables (the exact re-reading).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from edge import strict_json  # noqa: E402

USERS = "users(limit: $limit, offset: $offset) { id name email posts { id title comments { id body } } }"
BODIES = {
    "bench request": json.dumps(
        {
            "query": "query GetUsers($limit: Int!) { users(limit: $limit) { id name email posts { id title "
            "comments { id body } } } }",
            "variables": {"limit": 10},
            "operationName": "GetUsers",
        }
    ),
    "259-byte request": json.dumps(
        {
            "query": f"query GetUsers($limit: Int!, $offset: Int!) {{ {USERS} }}",
            "variables": {"limit": 10, "offset": 20},
            "operationName": "GetUsers",
            "extensions": {"client": "js"},
        }
    ),
    "string literals": json.dumps(
        {
            "query": 'query { users(where: {name: {_eq: "bob"}, role: {_in: ["admin", "editor"]}}) { id name } }',
            "operationName": None,
        }
    ),
    "a double": json.dumps(
        {
            "query": "query Near($lat: Float!, $limit: Int!) { stores(lat: $lat, limit: $limit) { id name } }",
            "variables": {"lat": 52.5200066, "limit": 10},
            "operationName": "Near",
        }
    ),
}
PARSERS = {"orjson.loads": orjson.loads, "strict_json.loads": strict_json.loads}


def built() -> str:
    return "compiled (mypyc)" if Path(strict_json.__file__).suffix == ".so" else "interpreted"


def microseconds(parse: Callable[[bytes], object], data: bytes, number: int = 50_000) -> float:
    return min(timeit.repeat(lambda: parse(data), number=number, repeat=7)) / number * 1e6


def timed() -> None:
    print(f"edge.strict_json: {built()}")
    print(f"{'body':18} {'bytes':>5}  {'orjson.loads':>12}  {'strict_json.loads':>17}  {'added':>8}")
    for name, text in BODIES.items():
        data = text.encode()
        old, new = (microseconds(parse, data) for parse in PARSERS.values())
        print(f"{name:18} {len(data):5}  {old:9.2f} µs  {new:14.2f} µs  {new - old:+5.2f} µs")


def counted(parser: str, body: str, calls: int) -> int:
    """Instructions of a process that makes ``calls`` calls (after 100 to warm up), by callgrind."""
    command = [sys.executable, __file__, "--count", parser, body, str(calls)]
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command], capture_output=True, text=True
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise RuntimeError(run.stderr[-2000:])
    return int(found.group(1))


def instructions(calls: int) -> None:
    print(f"edge.strict_json: {built()}; instructions per call, {calls} calls less none")
    print(f"{'body':18} {'bytes':>5}  {'orjson.loads':>12}  {'strict_json.loads':>17}  {'added':>8}")
    for name, text in BODIES.items():
        old, new = ((counted(parser, name, calls) - counted(parser, name, 0)) / calls for parser in PARSERS)
        print(f"{name:18} {len(text.encode()):5}  {old:12,.0f}  {new:17,.0f}  {new - old:+8,.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per count (default 20000)")
    parser.add_argument("--count", nargs=3, metavar=("PARSER", "BODY", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count:
        parse, data, calls = PARSERS[args.count[0]], BODIES[args.count[1]].encode(), int(args.count[2])
        for _ in range(100 + calls):
            parse(data)
        return 0
    if args.instructions:
        instructions(args.calls)
    else:
        timed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
