"""Event-trigger webhooks against a real, migrated Postgres: Hasura-shaped payloads, redelivery,
reordering, 401 without writes, 5xx while the database is down."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from actions.app import create_app
from tests.actions.conftest import EVENT_HEADERS, Db, make_settings
from tests.actions.diffs import apply_patch
from tests.actions.payloads import (
    ALICE,
    ALICE_ORDER,
    BERLIN,
    BOB,
    BOB_PAID_ORDER,
    DOCUMENT_UPDATE_EVENT,
    INVENTORY_UPDATE_EVENT,
    KEYBOARD,
    LAUNCH_PLAN,
    ORDER_INSERT_EVENT,
    document_event,
    inventory_event,
    order_event,
)
from tests.support.servers import free_loopback_socket

pytestmark = pytest.mark.postgres

V1 = "Goals\n- Ship the edge gateway\n- Enable API keys\n"
V2 = "Goals\n- Ship the edge gateway\n- Enable API keys\n- Write the runbook\n"
V3 = "Goals\n- Ship the edge gateway\n- Write the runbook\n"


async def deliver(client: httpx.AsyncClient, trigger: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/events/{trigger}", json=body, headers=EVENT_HEADERS)


def history(db: Db) -> list[tuple[Any, ...]]:
    return db.rows(
        "SELECT version, diff, content_after, author_id::text, event_id FROM document_history"
        " WHERE document_id = %s ORDER BY version",
        LAUNCH_PLAN,
    )


async def test_the_hasura_sample_update_writes_one_history_row_with_a_unified_diff(
    client: httpx.AsyncClient, db: Db
) -> None:
    response = await deliver(client, "documents_history", DOCUMENT_UPDATE_EVENT)

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "recorded"
    rows = history(db)
    assert [row[0] for row in rows] == [1, 2]  # the seeded version 1, and ours
    version, diff, content_after, author, event_id = rows[1]
    assert (version, content_after, author, event_id) == (2, V2, BOB, DOCUMENT_UPDATE_EVENT["id"])
    assert diff == (
        "--- a/content\n+++ b/content\n@@ -1,3 +1,4 @@\n"
        " Goals\n - Ship the edge gateway\n - Enable API keys\n+- Write the runbook\n"
    )
    assert apply_patch(V1, diff) == V2


async def test_a_redelivered_event_gets_2xx_and_adds_nothing(client: httpx.AsyncClient, db: Db) -> None:
    first = await deliver(client, "documents_history", DOCUMENT_UPDATE_EVENT)
    redelivery = dict(DOCUMENT_UPDATE_EVENT, delivery_info={"max_retries": 5, "current_retry": 1})
    second = await deliver(client, "documents_history", redelivery)

    assert first.status_code == second.status_code == 200
    assert second.json()["outcome"] == "duplicate"
    assert db.count("document_history") == 3  # two seeded rows + one


async def test_updates_delivered_in_reverse_order_each_get_their_own_version_and_diff(
    client: httpx.AsyncClient, db: Db
) -> None:
    update_1_to_2 = document_event(old_content=V1, new_content=V2, old_version=1, new_version=2)
    update_2_to_3 = document_event(old_content=V2, new_content=V3, old_version=2, new_version=3, author=ALICE)

    later = await deliver(client, "documents_history", update_2_to_3)
    earlier = await deliver(client, "documents_history", update_1_to_2)
    again = await deliver(client, "documents_history", update_2_to_3)

    assert [r.json()["outcome"] for r in (later, earlier, again)] == ["recorded", "recorded", "duplicate"]
    rows = history(db)
    assert [(row[0], row[2], row[3], row[4]) for row in rows[1:]] == [
        (2, V2, BOB, update_1_to_2["id"]),
        (3, V3, ALICE, update_2_to_3["id"]),
    ]
    assert apply_patch(V1, rows[1][1]) == V2
    assert apply_patch(V2, rows[2][1]) == V3


async def test_a_different_event_for_an_already_recorded_version(client: httpx.AsyncClient, db: Db) -> None:
    original = document_event(old_content=V1, new_content=V2, old_version=1, new_version=2)
    same_change = document_event(old_content=V1, new_content=V2, old_version=1, new_version=2)
    diverged = document_event(old_content=V1, new_content="something else\n", old_version=1, new_version=2)

    assert (await deliver(client, "documents_history", original)).json()["outcome"] == "recorded"
    duplicate = await deliver(client, "documents_history", same_change)
    conflict = await deliver(client, "documents_history", diverged)

    assert duplicate.status_code == 200 and duplicate.json()["outcome"] == "duplicate"
    assert conflict.status_code == 409
    assert conflict.json()["extensions"]["code"] == "HISTORY_VERSION_CONFLICT"
    assert [row[4] for row in history(db)][1:] == [original["id"]]


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"old_version": 2, "new_version": 2}, "document version unchanged"),
        ({"op": "DELETE"}, "no new row"),
    ],
)
async def test_events_without_a_new_version_write_nothing(
    client: httpx.AsyncClient, db: Db, changes: dict[str, Any], detail: str
) -> None:
    values: dict[str, Any] = {"old_content": V1, "new_content": V2, "old_version": 1, "new_version": 2}
    values.update(changes)
    body = document_event(**values)
    if changes.get("op") == "DELETE":
        body["event"]["data"]["new"] = None
    response = await deliver(client, "documents_history", body)
    assert response.status_code == 200
    assert response.json() == {"event_id": body["id"], "outcome": "skipped", "detail": detail}
    assert db.count("document_history") == 2


async def test_history_for_a_deleted_document_is_skipped(client: httpx.AsyncClient, db: Db) -> None:
    body = document_event(
        old_content=V1, new_content=V2, old_version=1, new_version=2, document_id="dddddddd-0000-4000-8000-00000000ffff"
    )
    response = await deliver(client, "documents_history", body)
    assert response.status_code == 200 and response.json()["outcome"] == "skipped"


async def test_an_unknown_author_is_stored_as_null_and_admin_changes_have_no_author(
    client: httpx.AsyncClient, db: Db
) -> None:
    ghost = document_event(
        old_content=V1, new_content=V2, old_version=1, new_version=2, author="99999999-9999-4999-8999-999999999999"
    )
    assert (await deliver(client, "documents_history", ghost)).status_code == 200
    assert history(db)[1][3] is None


async def test_an_event_for_another_trigger_is_rejected(client: httpx.AsyncClient, db: Db) -> None:
    response = await deliver(client, "documents_history", INVENTORY_UPDATE_EVENT)
    assert response.status_code == 400
    assert response.json()["extensions"]["code"] in {"EVENT_MISMATCH", "VALIDATION_FAILED"}
    body = dict(DOCUMENT_UPDATE_EVENT, trigger={"name": "documents_audit"})
    response = await deliver(client, "documents_history", body)
    assert response.status_code == 400 and response.json()["extensions"]["code"] == "EVENT_MISMATCH"
    assert db.count("document_history") == 2


async def test_a_crossing_below_the_threshold_raises_one_alert_even_when_redelivered(
    client: httpx.AsyncClient, db: Db
) -> None:
    first = await deliver(client, "inventory_low_stock", INVENTORY_UPDATE_EVENT)
    again = await deliver(client, "inventory_low_stock", INVENTORY_UPDATE_EVENT)

    assert [first.json()["outcome"], again.json()["outcome"]] == ["recorded", "duplicate"]
    assert db.rows(
        "SELECT product_id::text, warehouse_id::text, quantity, threshold, event_id FROM low_stock_alerts"
    ) == [(KEYBOARD, BERLIN, 7, 10, INVENTORY_UPDATE_EVENT["id"])]


@pytest.mark.parametrize(
    ("old", "new", "alerts"),
    [(42, 11, 0), (42, 10, 0), (42, 9, 1), (9, 3, 0), (3, 42, 0), (10, 9, 1)],
)
async def test_only_a_crossing_raises_an_alert(
    client: httpx.AsyncClient, db: Db, old: int, new: int, alerts: int
) -> None:
    response = await deliver(client, "inventory_low_stock", inventory_event(old_quantity=old, new_quantity=new))
    assert response.status_code == 200
    assert db.count("low_stock_alerts") == alerts


async def test_reordered_inventory_events_are_judged_on_their_own_rows(client: httpx.AsyncClient, db: Db) -> None:
    drop = inventory_event(old_quantity=42, new_quantity=8)
    further = inventory_event(old_quantity=8, new_quantity=3)
    await deliver(client, "inventory_low_stock", further)
    await deliver(client, "inventory_low_stock", drop)
    assert db.rows("SELECT quantity, event_id FROM low_stock_alerts") == [(8, drop["id"])]


async def test_order_created_writes_one_confirmation(client: httpx.AsyncClient, db: Db) -> None:
    first = await deliver(client, "order_created", ORDER_INSERT_EVENT)
    again = await deliver(client, "order_created", ORDER_INSERT_EVENT)
    manual = await deliver(client, "order_created", order_event(op="MANUAL"))

    assert [r.json()["outcome"] for r in (first, again, manual)] == ["recorded", "duplicate", "duplicate"]
    rows = db.rows("SELECT order_id::text, user_id::text, total::text, currency, event_id FROM order_confirmations")
    assert rows == [(ALICE_ORDER, ALICE, "148.00", "USD", ORDER_INSERT_EVENT["id"])]


async def test_order_events_from_seeding_without_replica_mode_are_confirmed_once(
    client: httpx.AsyncClient, db: Db
) -> None:
    # What seeds/ emits when applied by a role that may not use session_replication_role: one INSERT event
    # per demo order, Bob's already paid. Hasura may deliver each more than once.
    seeded = [order_event(order_id=ALICE_ORDER), order_event(order_id=BOB_PAID_ORDER)]
    seeded[1]["event"]["data"]["new"].update(user_id=BOB, status="paid")

    outcomes = [(await deliver(client, "order_created", event)).json()["outcome"] for event in seeded + seeded]

    assert outcomes == ["recorded", "recorded", "duplicate", "duplicate"]
    assert db.rows("SELECT order_id::text, user_id::text, total::text FROM order_confirmations ORDER BY order_id") == [
        (ALICE_ORDER, ALICE, "148.00"),
        (BOB_PAID_ORDER, BOB, "279.00"),
    ]


async def test_order_created_for_a_vanished_order_is_skipped(client: httpx.AsyncClient, db: Db) -> None:
    response = await deliver(client, "order_created", order_event(order_id="cccccccc-0000-4000-8000-00000000ffff"))
    assert response.status_code == 200 and response.json()["outcome"] == "skipped"
    assert db.count("order_confirmations") == 0


@pytest.mark.parametrize(
    ("trigger", "body"),
    [
        ("documents_history", DOCUMENT_UPDATE_EVENT),
        ("inventory_low_stock", INVENTORY_UPDATE_EVENT),
        ("order_created", ORDER_INSERT_EVENT),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Hasura-Webhook-Secret": "nope"}, {"X-Hasura-Action-Secret": EVENT_HEADERS["X-Hasura-Webhook-Secret"]}],
    ids=["missing", "wrong", "action-header"],
)
async def test_a_missing_or_wrong_secret_is_401_and_writes_nothing(
    client: httpx.AsyncClient, db: Db, trigger: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    before = db.counts()
    response = await client.post(f"/events/{trigger}", json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["extensions"]["code"] == "UNAUTHORIZED"
    assert db.counts() == before


async def test_a_payload_that_is_not_hasura_shaped_is_400(client: httpx.AsyncClient) -> None:
    response = await deliver(client, "order_created", {"payload": ORDER_INSERT_EVENT})
    assert response.status_code == 400
    assert response.json()["extensions"]["code"] == "VALIDATION_FAILED"


@pytest.mark.parametrize(
    ("trigger", "body", "field"),
    [
        ("order_created", order_event(event_id="evt\x00"), "id"),
        ("inventory_low_stock", inventory_event(old_quantity=12, new_quantity=3, event_id="\x00"), "id"),
        (
            "documents_history",
            document_event(old_content=V1, new_content="a\x00b", old_version=1, new_version=2),
            "content",
        ),
    ],
    ids=["order-event-id", "inventory-event-id", "document-content"],
)
async def test_a_string_postgres_text_cannot_hold_is_400_and_writes_nothing(
    client: httpx.AsyncClient, db: Db, trigger: str, body: dict[str, Any], field: str
) -> None:
    before = db.counts()
    response = await deliver(client, trigger, body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["extensions"]["code"] == "VALIDATION_FAILED"
    assert any(item["loc"][-1] == field and "U+0000" in item["msg"] for item in error["extensions"]["errors"])
    assert db.counts() == before


@pytest.mark.parametrize(
    ("trigger", "body"),
    [
        ("documents_history", DOCUMENT_UPDATE_EVENT),
        ("inventory_low_stock", INVENTORY_UPDATE_EVENT),
        ("order_created", ORDER_INSERT_EVENT),
    ],
)
async def test_a_database_outage_is_503_with_retry_after_so_hasura_retries(trigger: str, body: dict[str, Any]) -> None:
    with free_loopback_socket() as sock:  # bound but never listening: connections are refused
        port = sock.getsockname()[1]
        settings = make_settings(f"postgresql://postgres@127.0.0.1:{port}/none", db_connect_timeout=1)
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://actions.test") as client,
        ):
            response = await deliver(client, trigger, body)
            ready = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "10"
    assert response.json()["extensions"]["code"] == "TRANSIENT_FAILURE"
    assert ready.status_code == 503


async def test_an_event_that_failed_during_an_outage_is_recorded_once_on_redelivery(
    client: httpx.AsyncClient, db: Db
) -> None:
    with free_loopback_socket() as sock:
        port = sock.getsockname()[1]
        down = create_app(make_settings(f"postgresql://postgres@127.0.0.1:{port}/none", db_connect_timeout=1))
        async with (
            down.router.lifespan_context(down),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=down), base_url="http://actions.test") as outage_client,
        ):
            assert (await deliver(outage_client, "documents_history", DOCUMENT_UPDATE_EVENT)).status_code == 503
    retry = dict(DOCUMENT_UPDATE_EVENT, delivery_info={"max_retries": 5, "current_retry": 1})
    assert (await deliver(client, "documents_history", retry)).status_code == 200
    assert (await deliver(client, "documents_history", retry)).status_code == 200
    assert db.count("document_history") == 3


async def test_the_confirmation_total_comes_from_the_database_not_the_event(client: httpx.AsyncClient, db: Db) -> None:
    order = db.make_order(user_id=BOB, total="0")
    db.execute(
        "INSERT INTO order_items (order_id, product_id, quantity) VALUES (%s, %s, 2)", order, KEYBOARD
    )  # 2 x 89.00; the pricing triggers fill unit_price and orders.total
    body = order_event(order_id=order)
    body["event"]["data"]["new"].update(user_id=BOB, total=0)

    response = await deliver(client, "order_created", body)

    assert response.status_code == 200 and response.json()["outcome"] == "recorded"
    assert db.rows("SELECT user_id::text, total::text FROM order_confirmations WHERE order_id = %s", order) == [
        (BOB, "178.00")
    ]
