"""A fresh database with the edge's own tables, made by its migrations as ``python -m edge db upgrade`` makes them.

Typical use, module-scoped: ``with edge_database(postgres_server_url, "edge_keys") as url: yield url``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

from edge.db.cli import main as db_main
from tests.support.postgres import fresh_database


@contextlib.contextmanager
def edge_database(base_url: str, prefix: str = "edge") -> Iterator[str]:
    """A uniquely named database on ``base_url``'s server, upgraded to the edge's schema; dropped on exit."""
    with fresh_database(base_url, prefix) as url:
        out, err = io.StringIO(), io.StringIO()
        code = db_main(["upgrade"], database_url=url, out=out, err=err)
        assert code == 0, f"python -m edge db upgrade failed ({code}): {err.getvalue()}"
        yield url
