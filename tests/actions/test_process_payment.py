"""processPayment over ASGI against a real, migrated Postgres: validation, idempotency, provider outcomes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from actions.handlers.payments import fingerprint, validate_payment_input
from actions.hasura import ProcessPaymentInput
from actions.providers import ChargeRequest, ChargeResult, ProviderTimeout, SimulatedProvider
from tests.actions.conftest import ACTION_HEADERS, Db, make_settings
from tests.actions.payloads import (
    ALICE,
    ALICE_ORDER,
    BOB,
    BOB_PAID_ORDER,
    PROCESS_PAYMENT_REQUEST,
    payment_request,
)

pytestmark = pytest.mark.postgres

URL = "/actions/processPayment"


async def pay(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(URL, json=body, headers=ACTION_HEADERS)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert body["extensions"]["code"] == code


async def test_the_hasura_sample_request_is_approved_and_writes_payment_order_and_record_together(
    client: httpx.AsyncClient, db: Db
) -> None:
    response = await pay(client, PROCESS_PAYMENT_REQUEST)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "paymentId",
        "orderId",
        "status",
        "orderStatus",
        "amount",
        "currency",
        "providerReference",
        "idempotentReplay",
        "createdAt",
    }
    assert body["status"] == "approved"
    assert body["orderStatus"] == "paid"
    assert body["orderId"] == ALICE_ORDER
    assert body["amount"] == "148.00"
    assert body["currency"] == "USD"
    assert body["idempotentReplay"] is False
    key = PROCESS_PAYMENT_REQUEST["input"]["input"]["idempotencyKey"]
    assert body["providerReference"] == SimulatedProvider.reference_for(
        __import__("hashlib").sha256(f"{ALICE}:{key}".encode()).hexdigest()
    )
    assert db.rows(
        "SELECT id::text, user_id::text, amount, status, idempotency_key FROM payments WHERE order_id = %s", ALICE_ORDER
    ) == [(body["paymentId"], ALICE, Decimal("148.00"), "approved", key)]
    assert db.value("SELECT status FROM orders WHERE id = %s", ALICE_ORDER) == "paid"
    state, status, stored = db.rows(
        "SELECT state, response_status, response_body FROM payment_idempotency WHERE user_id = %s", ALICE
    )[0]
    assert (state, status) == ("completed", 200)
    assert stored == body


async def test_same_key_and_same_input_replays_the_stored_body(client: httpx.AsyncClient, db: Db) -> None:
    body = payment_request(key="replay-me")
    first = await pay(client, body)
    # The same input written differently (string amount, lower-case currency) is still the same input.
    again = payment_request(key="replay-me", amount="148", currency="usd")
    second = await pay(client, again)
    third = await pay(client, body)

    assert first.status_code == second.status_code == third.status_code == 200
    assert first.json()["idempotentReplay"] is False
    for replay in (second, third):
        assert replay.json() == {**first.json(), "idempotentReplay": True}
    assert db.count("payments WHERE order_id = 'cccccccc-0000-4000-8000-000000000001'") == 1


async def test_same_key_with_different_input_is_422_idempotency_key_reused(client: httpx.AsyncClient, db: Db) -> None:
    other_order = db.make_order(user_id=ALICE, total="10.00")
    assert (await pay(client, payment_request(key="k1"))).status_code == 200

    reused = await pay(client, payment_request(key="k1", order_id=other_order, amount="10.00"))

    assert_error(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    assert db.count("payments") == 2  # the seeded one and ours
    assert db.value("SELECT status FROM orders WHERE id = %s", other_order) == "awaiting_payment"


async def test_keys_are_scoped_to_the_user(client: httpx.AsyncClient, db: Db) -> None:
    bob_order = db.make_order(user_id=BOB, total="20.00")
    alice = await pay(client, payment_request(key="shared-key"))
    bob = await pay(client, payment_request(key="shared-key", user_id=BOB, order_id=bob_order, amount="20.00"))

    assert alice.status_code == bob.status_code == 200
    assert bob.json()["idempotentReplay"] is False
    assert bob.json()["paymentId"] != alice.json()["paymentId"]
    assert db.count("payment_idempotency") == 2


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"amount": -148}, 400, "INVALID_AMOUNT"),
        ({"amount": 0}, 400, "INVALID_AMOUNT"),
        ({"amount": "148.001"}, 400, "INVALID_AMOUNT_PRECISION"),
        ({"amount": 148.005}, 400, "INVALID_AMOUNT_PRECISION"),
        ({"amount": "1e12"}, 400, "INVALID_AMOUNT"),
        ({"amount": "NaN"}, 400, "VALIDATION_FAILED"),
        ({"amount": "abc"}, 400, "VALIDATION_FAILED"),
        ({"amount": True}, 400, "VALIDATION_FAILED"),
        ({"currency": "XYZ"}, 400, "INVALID_CURRENCY"),
        ({"currency": "US"}, 400, "INVALID_CURRENCY"),
        ({"currency": "€"}, 400, "INVALID_CURRENCY"),
        ({"currency": "EUR"}, 422, "AMOUNT_MISMATCH"),
        ({"amount": "148.01"}, 422, "AMOUNT_MISMATCH"),
        ({"order_id": str(uuid.uuid4())}, 404, "ORDER_NOT_FOUND"),
        ({"order_id": "not-a-uuid"}, 400, "VALIDATION_FAILED"),
        ({"order_id": BOB_PAID_ORDER, "amount": "279.00"}, 404, "ORDER_NOT_FOUND"),  # someone else's
        ({"key": ""}, 400, "VALIDATION_FAILED"),
        ({"key": "x" * 256}, 400, "VALIDATION_FAILED"),
        ({"key": "   "}, 400, "INVALID_IDEMPOTENCY_KEY"),
        ({"key": "before\x00after"}, 400, "VALIDATION_FAILED"),  # Postgres text cannot hold U+0000
        ({"key": "\x00"}, 400, "VALIDATION_FAILED"),
    ],
)
async def test_invalid_requests_are_4xx_and_store_nothing(
    client: httpx.AsyncClient, db: Db, overrides: dict[str, Any], status: int, code: str
) -> None:
    before = db.counts()

    response = await pay(client, payment_request(**overrides))

    assert_error(response, status, code)
    assert db.counts() == before
    assert db.value("SELECT status FROM orders WHERE id = %s", ALICE_ORDER) == "awaiting_payment"


async def test_paying_a_paid_order_is_409_and_stores_nothing(client: httpx.AsyncClient, db: Db) -> None:
    before = db.counts()
    response = await pay(client, payment_request(user_id=BOB, order_id=BOB_PAID_ORDER, amount="279.00"))
    assert_error(response, 409, "ORDER_NOT_PAYABLE")
    assert db.counts() == before


async def test_a_rejected_request_does_not_burn_the_key(client: httpx.AsyncClient, db: Db) -> None:
    wrong = await pay(client, payment_request(key="fix-and-retry", amount="148.01"))
    right = await pay(client, payment_request(key="fix-and-retry"))
    assert_error(wrong, 422, "AMOUNT_MISMATCH")
    assert right.status_code == 200 and right.json()["idempotentReplay"] is False


@pytest.mark.parametrize(
    ("currency", "total", "amount", "shown"),
    [("JPY", "1500", 1500, "1500"), ("EUR", "12.30", "12.3", "12.30"), ("KWD", "7.25", "7.250", "7.250")],
)
async def test_currency_precision_follows_iso_4217(
    client: httpx.AsyncClient, db: Db, currency: str, total: str, amount: Any, shown: str
) -> None:
    order = db.make_order(user_id=ALICE, total=total, currency=currency)
    response = await pay(client, payment_request(order_id=order, amount=amount, currency=currency))
    assert response.status_code == 200, response.text
    assert response.json()["amount"] == shown


async def test_jpy_rejects_fractions(client: httpx.AsyncClient, db: Db) -> None:
    order = db.make_order(user_id=ALICE, total="1500", currency="JPY")
    response = await pay(client, payment_request(order_id=order, amount="1500.5", currency="JPY"))
    assert_error(response, 400, "INVALID_AMOUNT_PRECISION")


async def test_a_decline_is_a_stored_result_and_is_replayed(client: httpx.AsyncClient, db: Db) -> None:
    order = db.make_order(user_id=ALICE, total="20.13")
    body = payment_request(order_id=order, amount="20.13", key="declined-key")

    first = await pay(client, body)
    second = await pay(client, body)

    assert first.status_code == 200
    assert first.json()["status"] == "declined"
    assert first.json()["orderStatus"] == "payment_failed"
    assert second.json() == {**first.json(), "idempotentReplay": True}
    assert db.rows("SELECT status FROM payments WHERE order_id = %s", order) == [("declined",)]
    assert db.value("SELECT status FROM orders WHERE id = %s", order) == "payment_failed"
    assert db.value("SELECT state FROM payment_idempotency WHERE idempotency_key = 'declined-key'") == "completed"


async def test_a_provider_timeout_stores_nothing_and_returns_424(
    client: httpx.AsyncClient, db: Db, provider: SimulatedProvider
) -> None:
    order = db.make_order(user_id=ALICE, total="10.42")
    before = db.counts()

    response = await pay(client, payment_request(order_id=order, amount="10.42", key="t1"))

    assert_error(response, 424, "PROVIDER_TIMEOUT")
    assert response.json()["extensions"]["retryable"] is True
    assert db.counts() == before  # no payment, and the claim was released
    assert db.value("SELECT status FROM orders WHERE id = %s", order) == "awaiting_payment"
    assert len(provider.calls) == 1


class FlakyProvider:
    """Times out on the first charge, then behaves like SimulatedProvider (same provider key -> same charge)."""

    def __init__(self, *, hang: bool = False) -> None:
        self.inner = SimulatedProvider()
        self.calls: list[ChargeRequest] = []
        self.hang = hang

    @property
    def name(self) -> str:
        return "flaky"

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls.append(request)
        if len(self.calls) == 1:
            if self.hang:
                await asyncio.sleep(30)
            raise ProviderTimeout("first call times out")
        return await self.inner.charge(request)


@pytest.mark.parametrize("hang", [False, True], ids=["provider-raises", "deadline-expires"])
async def test_a_retry_after_a_timeout_proceeds_with_the_same_provider_key(
    database_url: str, db: Db, hang: bool
) -> None:
    from actions.app import create_app

    flaky = FlakyProvider(hang=hang)
    app = create_app(make_settings(database_url, provider_timeout_seconds=0.3), provider=flaky)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://actions.test") as client,
    ):
        first = await pay(client, payment_request(key="retry-after-timeout"))
        second = await pay(client, payment_request(key="retry-after-timeout"))

    assert_error(first, 424, "PROVIDER_TIMEOUT")
    assert second.status_code == 200, second.text
    assert second.json()["idempotentReplay"] is False
    assert flaky.calls[0].idempotency_key == flaky.calls[1].idempotency_key
    assert db.count("payments WHERE order_id = 'cccccccc-0000-4000-8000-000000000001'") == 1


class ConnectionKillingProvider:
    """Charges like SimulatedProvider, but the first charge also terminates every database connection of
    the actions service, as a database restart would: the payment cannot be written after the charge."""

    def __init__(self, database_url: str) -> None:
        self.inner = SimulatedProvider()
        self.database_url = database_url
        self.calls: list[ChargeRequest] = []

    @property
    def name(self) -> str:
        return "simulated"

    def _terminate_service_connections(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'hasura-edge-actions' AND datname = current_database()"
            )

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls.append(request)
        if len(self.calls) == 1:
            await asyncio.to_thread(self._terminate_service_connections)
        return await self.inner.charge(request)


async def test_a_database_failure_after_the_charge_is_a_retryable_4xx_and_the_retry_completes(
    database_url: str, db: Db
) -> None:
    from actions.app import create_app

    provider = ConnectionKillingProvider(database_url)
    app = create_app(make_settings(database_url), provider=provider)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://actions.test") as client,
    ):
        first = await pay(client, payment_request(key="db-restart"))
        stored_after_failure = db.rows("SELECT state FROM payment_idempotency WHERE idempotency_key = 'db-restart'")
        payments_after_failure = db.count("payments WHERE order_id = 'cccccccc-0000-4000-8000-000000000001'")
        retry = await pay(client, payment_request(key="db-restart"))

    # Hasura relays only 2xx/4xx: the transient failure is a 4xx whose extensions say "retry later".
    assert_error(first, 424, "TRANSIENT_FAILURE")
    assert first.json()["extensions"]["retryable"] is True
    assert first.json()["extensions"]["retryAfterSeconds"] > 0
    # Not stored as the key's final answer: the claim was released and no payment was written.
    assert stored_after_failure == []
    assert payments_after_failure == 0
    # The retry reaches the provider with the same provider key (the provider returns the same charge).
    assert retry.status_code == 200, retry.text
    assert retry.json()["idempotentReplay"] is False
    assert provider.calls[0].idempotency_key == provider.calls[1].idempotency_key
    assert db.count("payments WHERE order_id = 'cccccccc-0000-4000-8000-000000000001'") == 1
    assert db.value("SELECT state FROM payment_idempotency WHERE idempotency_key = 'db-restart'") == "completed"


async def test_an_in_progress_key_is_409_and_a_stale_claim_is_taken_over(client: httpx.AsyncClient, db: Db) -> None:
    command = validate_payment_input(
        ProcessPaymentInput.model_validate(payment_request(key="held")["input"]["input"]), user_id=uuid.UUID(ALICE)
    )
    db.execute(
        "INSERT INTO payment_idempotency (user_id, idempotency_key, request_fingerprint) VALUES (%s, 'held', %s)",
        ALICE,
        fingerprint(command),
    )
    busy = await pay(client, payment_request(key="held"))
    assert_error(busy, 409, "IDEMPOTENCY_IN_PROGRESS")
    assert busy.json()["extensions"]["retryable"] is True
    assert db.count("payments WHERE order_id = 'cccccccc-0000-4000-8000-000000000001'") == 0

    # The holder died long ago (older than the lease): a retry takes the claim over and completes it.
    with psycopg.connect(db.url) as conn:  # backdate the claim past the lease (the trigger would reset it)
        conn.execute("ALTER TABLE payment_idempotency DISABLE TRIGGER set_public_payment_idempotency_updated_at")
        conn.execute(
            "UPDATE payment_idempotency SET updated_at = %s WHERE idempotency_key = 'held'",
            (datetime.now(UTC) - timedelta(hours=1),),
        )
        conn.execute("ALTER TABLE payment_idempotency ENABLE TRIGGER set_public_payment_idempotency_updated_at")
    taken = await pay(client, payment_request(key="held"))
    assert taken.status_code == 200, taken.text
    assert db.value("SELECT state FROM payment_idempotency WHERE idempotency_key = 'held'") == "completed"


async def test_identity_comes_from_session_variables_never_from_input(client: httpx.AsyncClient, db: Db) -> None:
    # Bob's session, input claiming to be Alice: Alice's order is not Bob's, so it does not exist for him.
    as_bob = await pay(client, payment_request(user_id=BOB, extra_input={"userId": ALICE, "user_id": ALICE}))
    assert_error(as_bob, 404, "ORDER_NOT_FOUND")
    assert db.count("payment_idempotency") == 0

    # Alice's session, input claiming to be Bob: the payment is Alice's.
    as_alice = await pay(client, payment_request(user_id=ALICE, extra_input={"userId": BOB}))
    assert as_alice.status_code == 200
    assert db.rows("SELECT user_id::text FROM payments WHERE order_id = %s", ALICE_ORDER) == [(ALICE,)]
    assert db.rows("SELECT user_id::text FROM payment_idempotency") == [(ALICE,)]


@pytest.mark.parametrize(
    "session",
    [
        {"x-hasura-role": "user"},
        {"x-hasura-role": "admin"},
        {"x-hasura-role": "user", "x-hasura-user-id": "42"},
        {"x-hasura-role": "admin", "x-hasura-user-id": ALICE},
        {"x-hasura-user-id": ALICE},
    ],
    ids=["no-user", "admin", "not-a-uuid", "admin-impersonating", "no-role"],
)
async def test_a_session_without_a_user_id_or_with_another_role_is_403(
    client: httpx.AsyncClient, db: Db, session: dict[str, str]
) -> None:
    body = payment_request()
    body["session_variables"] = session
    before = db.counts()
    assert_error(await pay(client, body), 403, "FORBIDDEN")
    assert db.counts() == before


async def test_session_variable_names_are_case_insensitive(client: httpx.AsyncClient) -> None:
    body = payment_request()
    body["session_variables"] = {"X-Hasura-Role": "user", "X-Hasura-User-Id": ALICE}
    assert (await pay(client, body)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Hasura-Action-Secret": ""}, {"X-Hasura-Action-Secret": "wrong"}, {"X-Hasura-Webhook-Secret": "x"}],
    ids=["missing", "empty", "wrong", "other-header"],
)
async def test_a_missing_or_wrong_secret_is_401_and_writes_nothing(
    client: httpx.AsyncClient, db: Db, headers: dict[str, str]
) -> None:
    before = db.counts()
    response = await client.post(URL, json=payment_request(), headers=headers)
    assert_error(response, 401, "UNAUTHORIZED")
    assert db.counts() == before
    assert db.value("SELECT status FROM orders WHERE id = %s", ALICE_ORDER) == "awaiting_payment"


async def test_the_secret_is_checked_before_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, content=b"{not json", headers={"content-type": "application/json"})
    assert_error(response, 401, "UNAUTHORIZED")


async def test_a_malformed_body_is_400_in_hasura_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"action": {"name": "processPayment"}}, headers=ACTION_HEADERS)
    assert_error(response, 400, "VALIDATION_FAILED")
    assert response.json()["extensions"]["errors"]


async def test_another_action_name_is_rejected(client: httpx.AsyncClient, db: Db) -> None:
    body = payment_request()
    body["action"]["name"] = "refundPayment"
    assert_error(await pay(client, body), 400, "ACTION_MISMATCH")
    assert db.count("payment_idempotency") == 0


@pytest.mark.parametrize(
    ("raw_amount", "status", "code"),
    [("148.0000000000000001", 400, "INVALID_AMOUNT_PRECISION"), ("148.00", 200, None), ("1.48e2", 200, None)],
)
async def test_json_numbers_keep_every_digit(
    client: httpx.AsyncClient, db: Db, raw_amount: str, status: int, code: str | None
) -> None:
    # As a float, 148.0000000000000001 would be 148.0 and pass; the route decodes numbers as Decimal.
    text = json.dumps(payment_request()).replace('"amount": 148.0', f'"amount": {raw_amount}')
    assert raw_amount in text
    response = await client.post(
        URL, content=text.encode(), headers={**ACTION_HEADERS, "content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["extensions"]["code"] == code
        assert db.count("payment_idempotency") == 0
