"""``python -m edge usage report``: usage recorded by the real meter in a real Redis, reported as a table and as
CSV, in process and as a process; bad input and an unreachable Redis end in one line; no key secret is shown;
the progress line appears on a terminal only.

The usage is recorded in a year no other test uses (random per run), and deleted afterwards, so a shared
REDIS_URL neither disturbs these tests nor keeps their data.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from edge.keys import hash_key, open_repository
from edge.observability.metering import RedisUsageMeter
from edge.redis_topology import open_shared_redis
from edge.usage_cli import EXIT_OK, EXIT_STORE, EXIT_USAGE, main, parse_period
from tests.support.edge_database import edge_database

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"hek_([a-z2-7]{10})_([A-Za-z0-9_-]{43})")


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def record(
    redis_url: str, iso: str, period: str, *usage: tuple[str, str, dict[str, Any]], retention: int | None = None
) -> None:
    """Record ``usage`` through the edge's meter as if at ``iso``, and flush it."""

    async def go() -> None:
        shared = open_shared_redis(redis_url, timeout=2.0)
        try:
            meter = RedisUsageMeter(
                shared.client,  # type: ignore[arg-type]
                period=period,  # type: ignore[arg-type]
                clock=lambda: at(iso),
                retention_seconds=retention,
            )
            for kind, subject, measures in usage:
                meter.record(kind, subject, **measures)  # type: ignore[arg-type]
            assert await meter.flush()
        finally:
            await shared.aclose()

    asyncio.run(go())


@pytest.fixture(scope="module")
def year(redis_url: str) -> Iterator[int]:
    """A year with the usage below, recorded by month (March) and by day (14 March, and 1 April)."""
    chosen = random.randrange(2200, 9000)
    record(
        redis_url,
        f"{chosen}-03-10T12:00:00",
        "month",
        ("key", "aaaaaaaaaa", {"requests": 3, "cost_points": 40, "rows": 7}),
        ("key", "bbbbbbbbbb", {"requests": 1000, "cost_points": 1_234_567, "rows": 2, "subscription_seconds": 12.25}),
        ("key", "cccccccccc", {"requests": 1, "cost_points": 50}),
        ("user", "alice", {"requests": 2, "cost_points": 40}),
        ("user", "bob", {"requests": 1, "cost_points": 5, "subscription_seconds": 3.5}),
    )
    record(
        redis_url,
        f"{chosen}-03-14T08:00:00",
        "day",
        ("key", "aaaaaaaaaa", {"requests": 2, "cost_points": 10, "rows": 1}),
        ("user", "carol", {"requests": 1, "cost_points": 60, "subscription_seconds": 0.5}),
        ("user", "mallory\x1b[2J", {"requests": 1}),
    )
    record(redis_url, f"{chosen}-04-01T00:00:00", "day", ("key", "aaaaaaaaaa", {"requests": 100, "cost_points": 900}))
    yield chosen
    client = redis.Redis.from_url(redis_url)
    try:
        for name in client.scan_iter(match=f"edge:usage:{{{chosen}-*"):
            client.delete(name)
    finally:
        client.close()


def settings_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The least configuration the edge accepts, with ``EDGE_REDIS_URL``; ``extra`` adds or replaces."""
    env = {
        "EDGE_HASURA_URL": "http://127.0.0.1:8080",
        "EDGE_HASURA_ADMIN_SECRET": "hasura-admin-secret-never-printed",
        "EDGE_UNAUTHORIZED_ROLE": "anonymous",
        "EDGE_REDIS_URL": redis_url,
    }
    env.update(extra)
    return {name: value for name, value in env.items() if value}


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the process's EDGE_* variables to exactly ``settings_env(...)`` for an in-process run."""

    def apply(env: dict[str, str]) -> None:
        for name in list(os.environ):
            if name.upper().startswith("EDGE_"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return apply


def run(*argv: str, **kwargs: Any) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", *argv], out=out, err=err, **kwargs)
    return Run(code, out.getvalue(), err.getvalue())


def run_process(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {name: value for name, value in os.environ.items() if not name.upper().startswith("EDGE_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "edge", "usage", "report", *argv],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def month_table(year: int) -> str:
    return (
        f"Usage in {year}-03 (UTC)\n"
        "\n"
        "API keys (3)\n"
        "KEY_ID      OWNER  PLAN  REQUESTS  COST_POINTS  ROWS  SUBSCRIPTION_SECONDS\n"
        "bbbbbbbbbb  -      -        1,000    1,234,567     2                  12.3\n"
        "aaaaaaaaaa  -      -            5           50     8                   0.0\n"
        "cccccccccc  -      -            1           50     0                   0.0\n"
        "TOTAL                       1,006    1,234,667    10                  12.3\n"
        "\n"
        "Users (4)\n"
        "USER            REQUESTS  COST_POINTS  ROWS  SUBSCRIPTION_SECONDS\n"
        "carol                  1           60     0                   0.5\n"
        "alice                  2           40     0                   0.0\n"
        "bob                    1            5     0                   3.5\n"
        "mallory\\x1b[2J         1            0     0                   0.0\n"
        "TOTAL                  5          105     0                   4.0\n"
    )


def month_csv(year: int) -> str:
    return (
        "period,subject_kind,subject,owner,plan,requests,cost_points,rows,subscription_seconds\n"
        f"{year}-03,key,bbbbbbbbbb,,,1000,1234567,2,12.250\n"
        f"{year}-03,key,aaaaaaaaaa,,,5,50,8,0.000\n"
        f"{year}-03,key,cccccccccc,,,1,50,0,0.000\n"
        f"{year}-03,user,carol,,,1,60,0,0.500\n"
        f"{year}-03,user,alice,,,2,40,0,0.000\n"
        f"{year}-03,user,bob,,,1,5,0,3.500\n"
        f"{year}-03,user,mallory\x1b[2J,,,1,0,0,0.000\n"
    )


# --- the report -----------------------------------------------------------------------------------


def test_a_month_adds_its_own_usage_and_its_days_sorted_by_cost_with_totals(
    redis_url: str, year: int, configure: Any
) -> None:
    configure(settings_env(redis_url))
    result = run("--period", f"{year}-03")
    assert (result.code, result.err) == (EXIT_OK, "")
    assert result.out == month_table(year)


def test_csv_to_standard_output_replaces_the_table(redis_url: str, year: int, configure: Any) -> None:
    configure(settings_env(redis_url))
    result = run("--period", f"{year}-03", "--csv", "-")
    assert (result.code, result.err) == (EXIT_OK, "")
    assert result.out == month_csv(year)


def test_csv_to_a_file_comes_with_the_table(redis_url: str, year: int, configure: Any, tmp_path: Path) -> None:
    configure(settings_env(redis_url))
    target = tmp_path / "usage.csv"
    result = run("--period", f"{year}-03", "--csv", str(target))
    assert (result.code, result.err) == (EXIT_OK, "")
    assert result.out == month_table(year)
    assert target.read_text(encoding="utf-8") == month_csv(year)


def test_a_day_reports_that_day_only(redis_url: str, year: int, configure: Any) -> None:
    configure(settings_env(redis_url, EDGE_USAGE_PERIOD="day"))
    result = run("--period", f"{year}-03-14", "--kind", "user")
    assert (result.code, result.err) == (EXIT_OK, "")
    assert result.out == (
        f"Usage in {year}-03-14 (UTC)\n"
        "\n"
        "Users (2)\n"
        "USER            REQUESTS  COST_POINTS  ROWS  SUBSCRIPTION_SECONDS\n"
        "carol                  1           60     0                   0.5\n"
        "mallory\\x1b[2J         1            0     0                   0.0\n"
        "TOTAL                  2           60     0                   0.5\n"
    )
    keys = run("--period", f"{year}-04-01", "--kind", "key", "--csv", "-")
    assert keys.out == (
        "period,subject_kind,subject,owner,plan,requests,cost_points,rows,subscription_seconds\n"
        f"{year}-04-01,key,aaaaaaaaaa,,,100,900,0,0.000\n"
    )


def test_kind_key_reports_keys_only(redis_url: str, year: int, configure: Any) -> None:
    configure(settings_env(redis_url))
    result = run("--period", f"{year}-03", "--kind", "key")
    assert (result.code, result.err) == (EXIT_OK, "")
    assert result.out == month_table(year).split("\n\nUsers")[0] + "\n"


def test_the_default_period_is_the_current_one_of_the_setting(redis_url: str, year: int, configure: Any) -> None:
    configure(settings_env(redis_url, EDGE_USAGE_PERIOD="day"))
    result = run("--csv", "-", now=lambda: at(f"{year}-03-14T23:00:00"))
    assert result.out.splitlines()[1:] == [
        f"{year}-03-14,key,aaaaaaaaaa,,,2,10,1,0.000",
        f"{year}-03-14,user,carol,,,1,60,0,0.500",
        f"{year}-03-14,user,mallory\x1b[2J,,,1,0,0,0.000",
    ]


def test_an_empty_period_is_a_short_report_and_a_csv_header(redis_url: str, year: int, configure: Any) -> None:
    configure(settings_env(redis_url))
    result = run("--period", f"{year}-05")
    assert (result.code, result.out, result.err) == (
        EXIT_OK,
        f"Usage in {year}-05 (UTC)\nNo usage recorded in {year}-05.\n",
        "",
    )
    csv = run("--period", f"{year}-05", "--csv", "-")
    assert csv.out == "period,subject_kind,subject,owner,plan,requests,cost_points,rows,subscription_seconds\n"


def test_an_empty_day_under_monthly_metering_says_why(redis_url: str, year: int, configure: Any) -> None:
    configure(settings_env(redis_url))
    result = run("--period", f"{year}-03-15")
    assert result.code == EXIT_OK
    assert result.err.count("\n") == 1 and "EDGE_USAGE_PERIOD is month" in result.err


def test_every_redis_topology_is_read(topology_redis_url: str, configure: Any) -> None:
    period = f"{random.randrange(2200, 9000)}-07"
    record(
        topology_redis_url,
        f"{period}-09T00:00:00",
        "day",
        ("key", "aaaaaaaaaa", {"requests": 2, "cost_points": 3}),
        ("user", "u1", {"requests": 2, "subscription_seconds": 1.5}),
        retention=3600,  # the data goes by itself, from every topology
    )
    configure(settings_env(topology_redis_url))
    result = run("--period", period, "--csv", "-")
    assert (result.code, result.err) == (EXIT_OK, "")
    assert result.out.splitlines()[1:] == [f"{period},key,aaaaaaaaaa,,,2,3,0,0.000", f"{period},user,u1,,,2,0,0,1.500"]


# --- problems: one line, no traceback -------------------------------------------------------------


@pytest.mark.parametrize("period", ["2026-13", "2026-02-30", "2026-1", "26-12", "december", "2026-12-01T00"])
def test_a_bad_period_is_one_line_and_exit_2_before_any_configuration(period: str, configure: Any) -> None:
    configure({})  # no configuration at all: the argument is checked first
    result = run("--period", period)
    assert (result.code, result.out) == (EXIT_USAGE, "")
    assert result.err == (
        f"error: --period {period!r} is not a period: give a month (YYYY-MM) or a day (YYYY-MM-DD), e.g. 2026-12\n"
    )


def test_a_redis_that_cannot_be_reached_is_one_line_and_exit_3_without_the_password(configure: Any) -> None:
    configure(settings_env(f"redis://:redis-password-never-printed@127.0.0.1:{closed_port()}/0"))
    result = run("--period", "2026-12", "--timeout", "2")
    assert (result.code, result.out) == (EXIT_STORE, "")
    assert result.err.startswith("error: the usage store (EDGE_REDIS_URL) could not be read: ConnectionError")
    assert result.err.count("\n") == 1
    assert "redis-password-never-printed" not in result.err


def test_a_redis_that_never_answers_is_one_line_after_the_timeout(configure: Any) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections (the backlog), never answers
        configure(settings_env(f"redis://127.0.0.1:{silent.getsockname()[1]}/0"))
        result = run("--period", "2026-12", "--timeout", "0.5")
    assert (result.code, result.out) == (EXIT_STORE, "")
    assert result.err.startswith("error: the usage store (EDGE_REDIS_URL) could not be read: ")
    assert result.err.count("\n") == 1


def test_ctrl_c_ends_the_report_with_one_line_and_exit_130(redis_url: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge", "usage", "report", "--period", "2026-12", "--timeout", "120"],
            cwd=ROOT,
            env={
                **{name: value for name, value in os.environ.items() if not name.upper().startswith("EDGE_")},
                **settings_env(f"redis://127.0.0.1:{silent.getsockname()[1]}/0"),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            silent.settimeout(60)
            connection, _ = silent.accept()  # the report is now waiting for Redis's answer
            with connection:
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert (process.returncode, out, err) == (130, "", "interrupted\n")


def test_without_redis_the_report_names_the_setting(configure: Any) -> None:
    configure(settings_env(""))
    result = run("--period", "2026-12")
    assert (result.code, result.out) == (EXIT_USAGE, "")
    assert result.err.count("\n") == 1 and result.err.startswith("hasura-edge: EDGE_REDIS_URL is required")


def test_an_invalid_setting_is_named_and_exit_2(configure: Any) -> None:
    configure(settings_env("http://redis.example:6379", EDGE_USAGE_PERIOD="week"))
    result = run("--period", "2026-12")
    assert (result.code, result.out) == (EXIT_USAGE, "")
    lines = result.err.splitlines()
    assert lines[0] == "hasura-edge: invalid configuration (2 problems):"
    assert sorted(line.split(":")[1].strip() for line in lines[1:]) == ["EDGE_REDIS_URL", "EDGE_USAGE_PERIOD"]


def test_a_csv_file_that_cannot_be_written_is_one_line(
    redis_url: str, year: int, configure: Any, tmp_path: Path
) -> None:
    configure(settings_env(redis_url))
    result = run("--period", f"{year}-03", "--csv", str(tmp_path / "missing" / "usage.csv"))
    assert (result.code, result.out) == (EXIT_USAGE, "")
    assert (
        result.err
        == f"error: --csv {tmp_path / 'missing' / 'usage.csv'}: cannot be written (No such file or directory)\n"
    )


# --- as a process ---------------------------------------------------------------------------------


def test_as_a_process_the_table_and_csv_match_and_stderr_is_empty(redis_url: str, year: int, tmp_path: Path) -> None:
    target = tmp_path / "usage.csv"
    done = run_process("--period", f"{year}-03", "--csv", str(target), env=settings_env(redis_url))
    assert (done.returncode, done.stderr) == (EXIT_OK, "")  # stderr is a pipe: no progress line
    assert done.stdout == month_table(year)
    assert target.read_text(encoding="utf-8") == month_csv(year)


def test_as_a_process_problems_are_one_line_each(redis_url: str) -> None:
    bad_period = run_process("--period", "2026-13", env=settings_env(redis_url))
    assert (bad_period.returncode, bad_period.stdout) == (EXIT_USAGE, "")
    assert bad_period.stderr.count("\n") == 1 and bad_period.stderr.startswith("error: --period '2026-13'")
    down = run_process(
        "--period", "2026-12", env=settings_env(f"redis://:pw-never-printed@127.0.0.1:{closed_port()}/0")
    )
    assert (down.returncode, down.stdout) == (EXIT_STORE, "")
    assert down.stderr.count("\n") == 1 and "Traceback" not in down.stderr and "pw-never-printed" not in down.stderr


def test_help_needs_no_configuration() -> None:
    done = run_process("--help", env={})
    assert done.returncode == EXIT_OK and "--period" in done.stdout and "--csv" in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "edge", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert "python -m edge usage report" in listed.stdout


# --- keys: owner and plan from the key store, never a secret --------------------------------------


@pytest.mark.postgres
def test_keys_show_owner_and_plan_and_never_a_secret(
    redis_url: str, postgres_server_url: str, configure: Any, tmp_path: Path
) -> None:
    period = f"{random.randrange(2200, 9000)}-06"
    with edge_database(postgres_server_url, "edge_usage") as database_url:

        async def create() -> tuple[str, str]:
            async with open_repository(database_url, known_plans={"partner"}, wait=True) as repository:
                key, plaintext = await repository.create(owner="Acme Corp", plan="partner")
                return key.key_id, plaintext

        key_id, plaintext = asyncio.run(create())
        record(redis_url, f"{period}-02T00:00:00", "month", ("key", key_id, {"requests": 4, "cost_points": 9}))
        try:
            configure(settings_env(redis_url, EDGE_DATABASE_URL=database_url))
            target = tmp_path / "usage.csv"
            result = run("--period", period, "--csv", str(target))
            with_owners = run("--period", period, "--no-owners")
        finally:
            client = redis.Redis.from_url(redis_url)
            for name in client.scan_iter(match=f"edge:usage:{{{period}}}*"):
                client.delete(name)
            client.close()
    assert (result.code, result.err) == (EXIT_OK, "")
    assert f"{key_id}  Acme Corp  partner         4            9     0                   0.0" in result.out
    assert target.read_text().splitlines()[1] == f"{period},key,{key_id},Acme Corp,partner,4,9,0,0.000"
    assert f"{key_id}  -      -            4            9     0                   0.0" in with_owners.out
    secret = KEY.fullmatch(plaintext)
    assert secret is not None and secret[1] == key_id
    for text in (result.out, result.err, target.read_text(), with_owners.out):
        assert secret[2] not in text and plaintext not in text and hash_key(plaintext) not in text


def test_an_unreachable_key_database_leaves_owners_out_with_one_warning(
    redis_url: str, year: int, configure: Any
) -> None:
    database_url = f"postgresql://edge:db-password-never-printed@127.0.0.1:{closed_port()}/edge"
    configure(settings_env(redis_url, EDGE_DATABASE_URL=database_url))
    result = run("--period", f"{year}-03", "--timeout", "2")
    assert result.code == EXIT_OK
    assert result.out == month_table(year)
    assert result.err.count("\n") == 1
    assert result.err.startswith("hasura-edge: warning: key owners are not shown")
    assert "db-password-never-printed" not in result.err


# --- progress -------------------------------------------------------------------------------------


def read_terminal(master: int) -> bytes:
    """What was written to a pseudo-terminal whose other end is closed."""
    data = b""
    while select.select([master], [], [], 5)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end is closed and everything was read
            break
        if not chunk:
            break
        data += chunk
    return data


def test_progress_is_shown_on_a_terminal_and_erased(redis_url: str, year: int, configure: Any) -> None:
    configure(settings_env(redis_url))
    master, slave = os.openpty()
    try:
        out = io.StringIO()
        with open(slave, "w", encoding="utf-8") as terminal:
            code = main(["report", "--period", f"{year}-03"], out=out, err=terminal, progress_delay=0)
        shown = read_terminal(master)
    finally:
        os.close(master)
    assert code == EXIT_OK and out.getvalue() == month_table(year)
    assert f"\rusage report: reading {year}-03 (1/32), 0 subjects so far (".encode() in shown
    assert f"\rusage report: reading {year}-03-31 (32/32), 7 subjects so far (".encode() in shown
    assert shown.endswith(b"\r\x1b[K")


def test_no_progress_when_standard_error_is_not_a_terminal(
    redis_url: str, year: int, configure: Any, tmp_path: Path
) -> None:
    configure(settings_env(redis_url))
    log = tmp_path / "stderr.txt"
    with log.open("w", encoding="utf-8") as err:
        code = main(["report", "--period", f"{year}-03"], out=io.StringIO(), err=err, progress_delay=0)
    assert code == EXIT_OK
    assert log.read_text() == ""


# --- periods --------------------------------------------------------------------------------------


def test_a_month_reads_itself_and_each_of_its_days() -> None:
    assert parse_period("2028-02") == ("2028-02", *(f"2028-02-{day:02d}" for day in range(1, 30)))
    assert len(parse_period("2027-02")) == 29 and parse_period("2026-12")[-1] == "2026-12-31"
    assert parse_period("2026-12-07") == ("2026-12-07",)
