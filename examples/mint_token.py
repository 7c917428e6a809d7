"""Mint a development JWT (HS256) for one of the demo users, for the edge started by docker compose.

    python examples/mint_token.py alice                      # prints the token, nothing else
    python examples/mint_token.py bob --role user --ttl 600
    TOKEN=$(python examples/mint_token.py alice)
    curl -s --cacert .dev-certs/ca.pem https://localhost:8000/graphql -H "Authorization: Bearer $TOKEN" \\
         -H 'Content-Type: application/json' \\
         -d '{"query":"{ orders { id status total } }"}'

The key is, first found: EDGE_JWT_SECRET from the environment (Hasura's JWT secret JSON, HS* with a
``key``), JWT_HS256_KEY from the environment, JWT_HS256_KEY in the repository's .env file, then the
development default that docker-compose.yml uses when JWT_HS256_KEY is unset. These tokens are for
local demos only: anyone can mint them with the public default key.

The demo users and their fixed ids come from seeds/default (listed in hasura/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jose import jwt

# Must equal the default of ${JWT_HS256_KEY:-...} in docker-compose.yml (tests/compose checks it).
DEFAULT_HS256_KEY = "dev-only-jwt-hs256-key-aa584bdd8fe03499b4de76e838a72a19"
CLAIMS_NAMESPACE = "https://hasura.io/jwt/claims"
REPO_ROOT = Path(__file__).resolve().parent.parent

USERS: dict[str, str] = {
    "alice": "11111111-1111-4111-8111-111111111111",
    "bob": "22222222-2222-4222-8222-222222222222",
    "carol": "33333333-3333-4333-8333-333333333333",
    "dave": "44444444-4444-4444-8444-444444444444",
}
_HS_ALGORITHMS = {"HS256", "HS384", "HS512"}


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a .env file (comments, blanks and ``export`` allowed; quotes stripped)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def signing_key(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> tuple[str, str]:
    """``(key, algorithm)`` to sign with, looked up in the order the module docstring gives."""
    env = os.environ if environ is None else environ
    raw_config = env.get("EDGE_JWT_SECRET", "").strip()
    if raw_config:
        config = json.loads(raw_config)
        if isinstance(config, list):
            config = next((item for item in config if str(item.get("type", "")) in _HS_ALGORITHMS), None)
        if not isinstance(config, dict) or config.get("type") not in _HS_ALGORITHMS or not config.get("key"):
            raise SystemExit("EDGE_JWT_SECRET has no HS256/384/512 configuration with a key: cannot mint for it")
        return str(config["key"]), str(config["type"])
    key = env.get("JWT_HS256_KEY", "").strip()
    if not key:
        key = read_dotenv(dotenv if dotenv is not None else REPO_ROOT / ".env").get("JWT_HS256_KEY", "").strip()
    return key or DEFAULT_HS256_KEY, "HS256"


def claims_for(user: str, *, role: str = "user", ttl: int = 3600, now: float | None = None) -> dict[str, Any]:
    """Registered claims plus Hasura's claims for a demo user (the shape the edge and Hasura expect)."""
    issued = int(time.time() if now is None else now)
    user_id = USERS[user]
    return {
        "sub": user_id,
        "name": user,
        "iat": issued,
        "exp": issued + ttl,
        CLAIMS_NAMESPACE: {
            "x-hasura-allowed-roles": [role],
            "x-hasura-default-role": role,
            "x-hasura-user-id": user_id,
        },
    }


def mint_token(
    user: str,
    *,
    role: str = "user",
    ttl: int = 3600,
    environ: Mapping[str, str] | None = None,
    dotenv: Path | None = None,
) -> str:
    key, algorithm = signing_key(environ, dotenv)
    return str(jwt.encode(claims_for(user, role=role, ttl=ttl), key, algorithm=algorithm))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("user", choices=sorted(USERS), help="demo user (seeds/default)")
    parser.add_argument("--role", default="user", help="default and only allowed role (default: user)")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default: 3600)")
    parser.add_argument("--claims", action="store_true", help="also print the claims to stderr")
    args = parser.parse_args(argv)
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    token = mint_token(args.user, role=args.role, ttl=args.ttl)
    if args.claims:
        print(json.dumps(jwt.get_unverified_claims(token), indent=2), file=sys.stderr)
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
