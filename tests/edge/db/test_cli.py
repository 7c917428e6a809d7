"""``python -m edge db ...`` and what ``python -m edge keys ...`` says before and after it, on a real PostgreSQL."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from edge.db.cli import EXIT_CONFLICT, EXIT_DATABASE, EXIT_OK, EXIT_PENDING, EXIT_USAGE
from edge.db.cli import main as db_main
from edge.db.schema import UPGRADE_COMMAND, load_migrations
from edge.keys.cli import EXIT_DATABASE as KEYS_EXIT_DATABASE
from edge.keys.cli import main as keys_main
from tests.support.build import python_environment
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[3]
KEY = re.compile(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


@dataclass
class Result:
    code: int
    out: str
    err: str


def db(*argv: str, database_url: str | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = db_main(list(argv), database_url=database_url, out=out, err=err, connect_timeout=5)
    return Result(code, out.getvalue(), err.getvalue())


def keys(database_url: str, *argv: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = keys_main(list(argv), database_url=database_url, known_plans={"free"}, out=out, err=err, connect_timeout=5)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url, prefix="edge_db_cli") as url:
        yield url


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


@pytest.fixture
def no_edge_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EDGE_"):
            monkeypatch.delenv(name)


def test_check_current_and_upgrade(empty_database: str) -> None:
    labels = [migration.label for migration in load_migrations()]
    check = db("check", database_url=empty_database)
    assert check.code == EXIT_PENDING and UPGRADE_COMMAND in check.out
    current = db("current", database_url=empty_database)
    assert current.code == EXIT_OK and "version 0" in current.out
    assert [line.split() for line in current.out.splitlines()[1:]] == [[label, "pending"] for label in labels]

    upgraded = db("upgrade", database_url=empty_database)
    assert upgraded.code == EXIT_OK, upgraded.err
    assert [f"applied {label}" for label in labels] == upgraded.out.splitlines()[: len(labels)]
    assert "up to date" in upgraded.out

    again = db("upgrade", database_url=empty_database)
    assert again.code == EXIT_OK and "nothing to apply" in again.out
    assert db("check", database_url=empty_database).code == EXIT_OK
    current = db("current", database_url=empty_database)
    assert f"version {len(labels)}" in current.out and "pending" not in current.out


def test_an_edited_migration_makes_check_and_upgrade_exit_4(empty_database: str) -> None:
    assert db("upgrade", database_url=empty_database).code == EXIT_OK
    with psycopg.connect(empty_database, autocommit=True) as conn:  # as if the file had changed since
        conn.execute("UPDATE edge.schema_migrations SET checksum = 'edited' WHERE version = 1")
    for command in ("check", "upgrade"):
        result = db(command, database_url=empty_database)
        assert result.code == EXIT_CONFLICT, command
        assert "0001_api_keys" in result.out + result.err
    assert "DIFFERS" in db("current", database_url=empty_database).out


def test_the_url_comes_from_the_environment_or_the_config_file(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_edge_environment: None
) -> None:
    missing = db("check")
    assert missing.code == EXIT_USAGE and "EDGE_DATABASE_URL" in missing.err
    config = tmp_path / "edge.yaml"
    config.write_text(f"hasura_url: http://hasura:8080\ndatabase_url: {empty_database}\n")
    monkeypatch.setenv("EDGE_CONFIG", str(config))
    assert db("check").code == EXIT_PENDING  # from the file; nothing else of the edge's configuration needed
    monkeypatch.setenv("EDGE_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert db("check").code == EXIT_DATABASE  # the environment comes first, as for the edge
    config.write_text("- not a mapping\n")
    monkeypatch.delenv("EDGE_DATABASE_URL")
    broken = db("check")
    assert broken.code == EXIT_USAGE and "EDGE_CONFIG" in broken.err and "mapping" in broken.err


def test_usage_errors_exit_2() -> None:
    assert db("downgrade", database_url="postgresql://unused").code == EXIT_USAGE
    assert db("upgrade", "--lock-timeout", "-1", database_url="postgresql://unused").code == EXIT_USAGE
    assert db("--help", database_url="postgresql://unused").code == EXIT_OK


def test_an_unreachable_database_exits_3(closed_port_url: str) -> None:
    for command in ("upgrade", "current", "check"):
        result = db(command, database_url=closed_port_url)
        assert result.code == EXIT_DATABASE and "unavailable" in result.err


# --- keys before and after ------------------------------------------------------------------------------------


def test_keys_commands_name_the_upgrade_command_until_it_has_run(empty_database: str) -> None:
    for argv in (("list",), ("create", "--owner", "early", "--plan", "free"), ("revoke", "abcdefghij")):
        result = keys(empty_database, *argv)
        assert result.code == KEYS_EXIT_DATABASE, argv
        assert UPGRADE_COMMAND in result.err, argv
        assert result.out == ""
    assert db("upgrade", database_url=empty_database).code == EXIT_OK
    created = keys(empty_database, "create", "--owner", "after-upgrade", "--plan", "free")
    assert created.code == 0, created.err
    key = KEY.search(created.out)
    assert key is not None
    listed = keys(empty_database, "list")
    assert listed.code == 0 and key.group(0).split("_")[1] in listed.out and "1 key(s)" in listed.out


def test_python_m_edge_db_needs_only_the_database_url(empty_database: str) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "EDGE_DATABASE_URL": empty_database, **python_environment()}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edge", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    assert run("db", "check").returncode == EXIT_PENDING
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "applied 0001_api_keys" in upgraded.stdout
    assert run("db", "check").returncode == 0
    assert "db ..." in run("--help").stdout
