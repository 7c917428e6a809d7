"""documents_history trigger: one document_history row per document version, with a unified diff.

* The history version is ``data.new.version`` (bumped by the ``documents_bump_version`` trigger), never
  arrival order, so events delivered out of order still produce correctly keyed rows, each with the diff
  between its own ``old`` and ``new`` content.
* Idempotent by event id: ``INSERT ... ON CONFLICT DO NOTHING`` in the transaction that writes the row,
  so a redelivery commits nothing new and still gets 2xx.
* ``UNIQUE (document_id, version)`` hit by a *different* event id (a manual re-invocation, a trigger
  re-created after a metadata reload, or the seeded version-1 rows): if the stored row has the same
  ``content_after`` it is the same change recorded earlier, so the event is acknowledged as a
  duplicate. If the content differs the history has diverged (e.g. versions were reset); that raises
  HistoryConflict (409), so Hasura retries and then marks the event as errored, visible in
  ``hdb_catalog.event_invocation_logs``, rather than the conflict being dropped silently.
* An UPDATE that leaves the version unchanged (only other columns changed) and a DELETE write nothing.
"""

from __future__ import annotations

import difflib

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actions import queries
from actions.errors import HistoryConflict
from actions.handlers._events import check_source, is_foreign_key_violation
from actions.hasura import DocumentRow, EventAck, EventRequest, session_user_id

__all__ = ["TRIGGER", "content_diff", "patch_lines", "record_document_history"]

TRIGGER = "documents_history"
_NO_NEWLINE = "\\ No newline at end of file\n"


def patch_lines(text: str) -> list[str]:
    """``text`` cut into lines the way ``patch`` reads a file: after each ``\\n`` and nowhere else, each line
    keeping its ``\\n``; a last line without one stays as it is. ``str.splitlines`` would also cut at ``\\r``,
    form feed, U+0085, U+2028, U+2029 and more, giving hunks that ``patch`` cannot match.

    >>> patch_lines("a\\u2028b\\r\\nc")
    ['a\\u2028b\\r\\n', 'c']
    """
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def content_diff(before: str, after: str) -> str:
    """A unified diff from ``before`` to ``after`` with ``a/content`` / ``b/content`` headers, that GNU
    ``patch`` applies to ``before`` to give ``after`` exactly. A last line without a newline is followed by
    ``\\ No newline at end of file``, as ``diff -u`` and git write it. Empty when nothing changed.

    >>> print(content_diff("a\\nb\\n", "a\\nc"), end="")
    --- a/content
    +++ b/content
    @@ -1,2 +1,2 @@
     a
    -b
    +c
    \\ No newline at end of file
    """
    lines = difflib.unified_diff(
        patch_lines(before),
        patch_lines(after),
        fromfile="a/content",
        tofile="b/content",
    )
    out: list[str] = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n")
            out.append(_NO_NEWLINE)
    return "".join(out)


async def record_document_history(
    *, sessions: async_sessionmaker[AsyncSession], event: EventRequest[DocumentRow]
) -> EventAck:
    check_source(event, trigger=TRIGGER, schema="public", table="documents")
    new, old = event.event.data.new, event.event.data.old
    if event.event.op == "DELETE" or new is None:
        return EventAck(event_id=event.id, outcome="skipped", detail="no new row")
    if old is not None and old.version == new.version:
        return EventAck(event_id=event.id, outcome="skipped", detail="document version unchanged")
    diff = content_diff(old.content if old is not None else "", new.content)
    async with sessions() as session:
        try:
            async with session.begin():
                inserted = await queries.insert_history(
                    session,
                    event_id=event.id,
                    document_id=new.id,
                    version=new.version,
                    author_id=session_user_id(event.event.session_variables),
                    diff=diff,
                    content_after=new.content,
                )
                if inserted:
                    return EventAck(event_id=event.id, outcome="recorded", detail=f"version {new.version}")
                existing = await queries.get_history_by_version(session, document_id=new.id, version=new.version)
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                return EventAck(event_id=event.id, outcome="skipped", detail="document no longer exists")
            raise
    if existing is None or existing.event_id == event.id:
        return EventAck(event_id=event.id, outcome="duplicate", detail="event already recorded")
    if existing.content_after == new.content:
        return EventAck(event_id=event.id, outcome="duplicate", detail=f"version {new.version} already recorded")
    raise HistoryConflict(
        f"version {new.version} of document {new.id} is already recorded with different content "
        f"by event {existing.event_id}"
    )
