"""inventory_low_stock trigger: an alert when a stock level crosses below its threshold.

"Low" means ``quantity < low_stock_threshold``. An event raises an alert when its ``new`` row is low and
its ``old`` row was not (or there is no old row), judged from the event's own rows, so the outcome does
not depend on the order in which events arrive. Idempotent by event id (``ON CONFLICT (event_id) DO
NOTHING`` in the writing transaction).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actions import queries
from actions.handlers._events import check_source, is_foreign_key_violation
from actions.hasura import EventAck, EventRequest, InventoryRow

__all__ = ["TRIGGER", "crosses_below", "record_low_stock"]

TRIGGER = "inventory_low_stock"


def _is_low(row: InventoryRow) -> bool:
    return row.quantity < row.low_stock_threshold


def crosses_below(old: InventoryRow | None, new: InventoryRow | None) -> bool:
    """True when ``new`` is below its threshold and ``old`` was not (or did not exist)."""
    return new is not None and _is_low(new) and (old is None or not _is_low(old))


async def record_low_stock(
    *, sessions: async_sessionmaker[AsyncSession], event: EventRequest[InventoryRow]
) -> EventAck:
    check_source(event, trigger=TRIGGER, schema="public", table="inventory")
    old, new = event.event.data.old, event.event.data.new
    if event.event.op == "DELETE" or new is None or not crosses_below(old, new):
        return EventAck(event_id=event.id, outcome="skipped", detail="no threshold crossing")
    async with sessions() as session:
        try:
            async with session.begin():
                inserted = await queries.insert_low_stock_alert(
                    session,
                    event_id=event.id,
                    product_id=new.product_id,
                    warehouse_id=new.warehouse_id,
                    quantity=new.quantity,
                    threshold=new.low_stock_threshold,
                )
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                return EventAck(event_id=event.id, outcome="skipped", detail="product or warehouse is gone")
            raise
    if inserted:
        return EventAck(event_id=event.id, outcome="recorded", detail=f"{new.quantity} < {new.low_stock_threshold}")
    return EventAck(event_id=event.id, outcome="duplicate", detail="event already recorded")
