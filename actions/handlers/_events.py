"""Helpers shared by the event-trigger handlers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from actions.errors import EventMismatch
from actions.hasura import EventRequest

__all__ = ["FOREIGN_KEY_VIOLATION", "check_source", "is_foreign_key_violation"]

FOREIGN_KEY_VIOLATION = "23503"


def check_source(event: EventRequest[Any], *, trigger: str, schema: str, table: str) -> None:
    """Refuse an event meant for another trigger or table (a mis-pointed webhook URL). The 4xx makes the
    mistake visible in Hasura's event_invocation_logs instead of silently writing the wrong rows."""
    if event.trigger.name != trigger or (event.table.schema_name, event.table.name) != (schema, table):
        raise EventMismatch(
            f"this endpoint handles trigger {trigger} on {schema}.{table}, got {event.trigger.name} on "
            f"{event.table.schema_name}.{event.table.name}"
        )


def is_foreign_key_violation(error: IntegrityError) -> bool:
    return getattr(error.orig, "sqlstate", None) == FOREIGN_KEY_VIOLATION
