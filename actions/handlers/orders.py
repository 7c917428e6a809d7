"""order_created trigger: one order_confirmations row per order.

Values (owner, total, currency) are read from the order row in the database, not from the event: the
event fires on the order row *before* a nested insert adds its items, so ``new.total`` is 0, while
``orders.total`` is kept equal to the items' sum by triggers (migration ``order_pricing``). Hasura
delivers the event only after the inserting transaction committed, so the items are there when we read.
Idempotent twice over: by event id
(``ON CONFLICT (event_id) DO NOTHING``), and by order (the order row is locked ``FOR UPDATE`` and an
existing confirmation makes any later event for the same order a duplicate), so a manual re-invocation
with a fresh event id cannot confirm an order twice.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actions import queries
from actions.handlers._events import check_source
from actions.hasura import EventAck, EventRequest, OrderRow

__all__ = ["TRIGGER", "record_order_confirmation"]

TRIGGER = "order_created"


async def record_order_confirmation(
    *, sessions: async_sessionmaker[AsyncSession], event: EventRequest[OrderRow]
) -> EventAck:
    check_source(event, trigger=TRIGGER, schema="public", table="orders")
    new = event.event.data.new
    if event.event.op not in ("INSERT", "MANUAL") or new is None:
        return EventAck(event_id=event.id, outcome="skipped", detail="not an order creation")
    async with sessions() as session, session.begin():
        order = await queries.get_order(session, order_id=new.id, for_update=True)
        if order is None:
            return EventAck(event_id=event.id, outcome="skipped", detail="order no longer exists")
        if await queries.confirmation_exists(session, order_id=new.id):
            return EventAck(event_id=event.id, outcome="duplicate", detail="order already confirmed")
        inserted = await queries.insert_confirmation(
            session,
            event_id=event.id,
            order_id=order.id,
            user_id=order.user_id,
            total=order.total,
            currency=order.currency.strip(),
        )
    outcome = "recorded" if inserted else "duplicate"
    return EventAck(event_id=event.id, outcome=outcome)
