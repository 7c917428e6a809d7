"""``keys create|list|revoke|rotate`` through cli.main(), against a real database."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from edge.keys import ApiKey, ApiKeyStore, ExpiredApiKey, InvalidApiKey, RevokedApiKey, hash_key, open_repository
from edge.keys.cli import EXIT_DATABASE, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, main, parse_duration

from .conftest import KNOWN_PLANS

pytestmark = pytest.mark.postgres

KEY = re.compile(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def key(self) -> str:
        found = KEY.findall(self.out)
        assert len(found) == 1, self.out
        return str(found[0])

    @property
    def key_id(self) -> str:
        match = re.search(r"^key_id:\s+(\S+)$", self.out, re.MULTILINE)
        assert match is not None, self.out
        return match[1]


def run(database_url: str, *argv: str, **kwargs: float) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), database_url=database_url, known_plans=KNOWN_PLANS, out=out, err=err, **kwargs)
    return Result(code, out.getvalue(), err.getvalue())


def resolve(database_url: str, key: str, *, at: datetime | None = None) -> ApiKey:
    """What an edge would answer for ``key`` (a fresh store, so no cache), optionally at another wall time."""

    async def go() -> ApiKey:
        async with open_repository(database_url, known_plans=KNOWN_PLANS, wait=True) as repository:
            store = ApiKeyStore(repository, wall_clock=(lambda: at) if at else lambda: datetime.now(UTC))
            return await store.resolve(key)

    return asyncio.run(go())


def owner() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def test_create_prints_the_key_once_with_its_key_id_and_a_warning(database_url: str) -> None:
    who = owner()
    created = run(
        database_url,
        "keys",
        "create",
        "--owner",
        who,
        "--plan",
        "partner",
        "--role",
        "editor",
        "--var",
        "x-hasura-org-id=42",
        "--var",
        "x-hasura-region=eu=west",
        "--expires-in",
        "30d",
    )
    assert created.code == EXIT_OK, created.err
    assert created.out.count(created.key) == 1
    assert created.key.startswith(f"hek_{created.key_id}_")
    assert "cannot be shown again" in created.out
    key = resolve(database_url, created.key)
    assert (key.owner, key.plan, key.role) == (who, "partner", "editor")
    assert dict(key.session_variables) == {"x-hasura-org-id": "42", "x-hasura-region": "eu=west"}
    assert key.expires_at is not None
    assert timedelta(days=29, hours=23) < key.expires_at - datetime.now(UTC) <= timedelta(days=30)


def test_list_shows_keys_but_never_secrets_or_hashes(database_url: str) -> None:
    who = owner()
    created = run(database_url, "create", "--owner", who, "--plan", "free", "--var", "x-hasura-org-id=7")
    listed = run(database_url, "list")
    assert listed.code == EXIT_OK
    line = next(line for line in listed.out.splitlines() if who in line)
    assert created.key_id in line and "free" in line and "active" in line and "x-hasura-org-id=7" in line
    secret = created.key.split("_", 2)[2]
    for text in (listed.out, run(database_url, "list", "--all").out):
        assert secret not in text and created.key not in text and hash_key(created.key) not in text
        assert not KEY.search(text)


def test_revoke_then_the_key_is_refused_and_listed_only_with_all(database_url: str) -> None:
    created = run(database_url, "create", "--owner", owner(), "--plan", "free")
    revoked = run(database_url, "revoke", created.key_id)
    assert revoked.code == EXIT_OK and created.key_id in revoked.out
    with pytest.raises(RevokedApiKey):
        resolve(database_url, created.key)
    assert created.key_id not in run(database_url, "list").out
    line = next(line for line in run(database_url, "list", "--all").out.splitlines() if created.key_id in line)
    assert "revoked" in line


def test_rotate_prints_a_new_key_and_the_old_one_works_until_the_grace_ends(database_url: str) -> None:
    created = run(database_url, "create", "--owner", owner(), "--plan", "free", "--var", "x-hasura-org-id=9")
    rotated = run(database_url, "rotate", created.key_id, "--grace", "2h")
    assert rotated.code == EXIT_OK, rotated.err
    assert rotated.key != created.key and rotated.key_id != created.key_id
    assert rotated.out.count(rotated.key) == 1 and created.key not in rotated.out
    assert "cannot be shown again" in rotated.out
    now = datetime.now(UTC)
    old, new = resolve(database_url, created.key), resolve(database_url, rotated.key)
    assert old.session_variables == new.session_variables == {"x-hasura-org-id": "9"}
    assert old.last_rotated_at is not None and old.expires_at is not None
    assert timedelta(hours=1, minutes=59) < old.expires_at - now <= timedelta(hours=2)
    later = now + timedelta(hours=2, seconds=1)
    with pytest.raises(ExpiredApiKey):
        resolve(database_url, created.key, at=later)
    assert resolve(database_url, rotated.key, at=later).key_id == rotated.key_id
    line = next(line for line in run(database_url, "list").out.splitlines() if created.key_id in line)
    assert "rotated" in line


def test_rotate_defaults_to_a_24_hour_grace(database_url: str) -> None:
    created = run(database_url, "create", "--owner", owner(), "--plan", "free")
    assert run(database_url, "rotate", created.key_id).code == EXIT_OK
    old = resolve(database_url, created.key)
    assert old.expires_at is not None
    assert timedelta(hours=23, minutes=59) < old.expires_at - datetime.now(UTC) <= timedelta(hours=24)


def test_unknown_plan_is_a_usage_error_naming_the_plan(database_url: str) -> None:
    result = run(database_url, "create", "--owner", owner(), "--plan", "gold")
    assert result.code == EXIT_USAGE
    assert "unknown plan 'gold'" in result.err and "free, partner" in result.err
    assert result.out == ""


@pytest.mark.parametrize("role", ["admin", "ADMIN"])
def test_admin_role_is_refused(database_url: str, role: str) -> None:
    result = run(database_url, "create", "--owner", owner(), "--plan", "free", "--role", role)
    assert result.code == EXIT_USAGE and "'admin' is not allowed" in result.err
    assert not KEY.search(result.out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--owner", "o", "--plan", "free", "--var", "x-hasura-role=admin"], "reserved"),
        (["create", "--owner", "o", "--plan", "free", "--var", "X-Hasura-Org=1"], "lower-case"),
        (["create", "--owner", "o", "--plan", "free", "--var", "x-hasura-org"], "NAME=VALUE"),
        (["create", "--owner", "o", "--plan", "free", "--var", "x-hasura-a=1", "--var", "x-hasura-a=2"], "twice"),
        (["create", "--owner", "o", "--plan", "free", "--expires-in", "soon"], "invalid duration"),
        (["create", "--owner", "o", "--plan", "free", "--expires-in", "0d"], "future"),
        (["create", "--plan", "free"], "--owner"),
        (["rotate", "abcdefgh23", "--grace=-1h"], "invalid duration"),
        (["rotate", "abcdefgh23", "--grace", "-1h"], "expected one argument"),
        (["revoke"], "KEY_ID"),
        (["frobnicate"], "invalid choice"),
        ([], "COMMAND"),
    ],
)
def test_usage_and_validation_errors_exit_2_with_a_message(database_url: str, argv: list[str], message: str) -> None:
    result = run(database_url, *argv)
    assert result.code == EXIT_USAGE
    assert message in result.err
    assert not KEY.search(result.out)


@pytest.mark.parametrize("command", ["revoke", "rotate"])
def test_unknown_key_id_exits_1(database_url: str, command: str) -> None:
    result = run(database_url, command, "zzzzzzzzzz")
    assert result.code == EXIT_NOT_FOUND and "zzzzzzzzzz" in result.err


def test_rotating_a_revoked_key_is_refused(database_url: str) -> None:
    created = run(database_url, "create", "--owner", owner(), "--plan", "free")
    run(database_url, "revoke", created.key_id)
    result = run(database_url, "rotate", created.key_id)
    assert result.code == EXIT_USAGE and "revoked" in result.err


def test_help_exits_0_on_out(database_url: str) -> None:
    result = run(database_url, "create", "--help")
    assert result.code == EXIT_OK and "--expires-in" in result.out


def test_an_unreachable_database_exits_3(closed_port_url: str) -> None:
    result = run(closed_port_url, "list", connect_timeout=0.3)
    assert result.code == EXIT_DATABASE and "unavailable" in result.err


def test_a_wrong_key_is_invalid_not_found(database_url: str) -> None:
    created = run(database_url, "create", "--owner", owner(), "--plan", "free")
    with pytest.raises(InvalidApiKey):
        resolve(database_url, created.key[:-1] + ("A" if created.key[-1] != "A" else "B"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("24h", timedelta(hours=24)), ("90m", timedelta(minutes=90)),
     ("15s", timedelta(seconds=15)), ("2w", timedelta(weeks=2)), ("0s", timedelta(0))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
