"""Pure pieces, tested as tables: settings, input validation, fingerprints, diffs, crossings, provider."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from actions.errors import InvalidInput
from actions.handlers.low_stock import crosses_below
from actions.handlers.payments import fingerprint, validate_payment_input
from actions.hasura import InventoryRow, ProcessPaymentInput
from actions.providers import ChargeRequest, ProviderTimeout, SimulatedProvider
from actions.security import secret_matches
from actions.settings import ActionsSettings

USER = uuid.UUID(int=7)
ORDER = uuid.UUID(int=8)
STRONG = "a-strong-secret-of-32-characters"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql://u@db/app?sslmode=require", "postgresql+psycopg://u@db/app?sslmode=require"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
    ],
)
def test_database_url_uses_the_psycopg_driver(given: str, expected: str) -> None:
    assert ActionsSettings(database_url=given, webhook_secret=STRONG).database_url == expected


def test_settings_come_from_actions_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONS_DATABASE_URL", "postgres://u@db/app")
    monkeypatch.setenv("ACTIONS_WEBHOOK_SECRET", STRONG)
    monkeypatch.setenv("ACTIONS_PORT", "9001")
    settings = ActionsSettings()
    assert (settings.port, settings.host) == (9001, "127.0.0.1")
    assert settings.webhook_secret.get_secret_value() == STRONG
    assert STRONG not in repr(settings)


def test_port_defaults_to_8001() -> None:
    assert ActionsSettings(database_url="postgres://u@db/app", webhook_secret=STRONG).port == 8001


@pytest.mark.parametrize("secret", ["", "   ", "changeme", "CHANGETHIS", "secret", "<your-secret>", "short"])
def test_empty_placeholder_or_short_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValidationError):
        ActionsSettings(database_url="postgres://u@db/app", webhook_secret=secret)


def test_a_missing_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTIONS_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValidationError):
        ActionsSettings(database_url="postgres://u@db/app")


@pytest.mark.parametrize("url", ["mysql://u@db/app", "sqlite:///x.db", ""])
def test_non_postgres_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        ActionsSettings(database_url=url, webhook_secret=STRONG)


@pytest.mark.parametrize(
    ("presented", "ok"), [(STRONG, True), (STRONG + " ", False), ("", False), (None, False), ("é", False)]
)
def test_secret_matching(presented: str | None, ok: bool) -> None:
    assert secret_matches(presented, STRONG) is ok


def payment_input(**values: Any) -> ProcessPaymentInput:
    data = {"orderId": str(ORDER), "amount": "10.00", "currency": "USD", "idempotencyKey": "k", **values}
    return ProcessPaymentInput.model_validate(data)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("10", "USD", Decimal("10.00")),
        (10.5, "usd", Decimal("10.50")),
        ("0.01", "EUR", Decimal("0.01")),
        ("1500", "JPY", Decimal("1500")),
        ("1500.000", "JPY", Decimal("1500")),
        ("1.234", "BHD", Decimal("1.234")),
        ("1.5", "KWD", Decimal("1.500")),
        ("1E+2", "USD", Decimal("100.00")),
    ],
)
def test_valid_amounts_are_quantized_to_the_currency(amount: Any, currency: str, expected: Decimal) -> None:
    command = validate_payment_input(payment_input(amount=amount, currency=currency), user_id=USER)
    assert command.amount == expected
    assert str(command.amount) == str(expected)


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("-1", "USD", "INVALID_AMOUNT"),
        ("0", "USD", "INVALID_AMOUNT"),
        ("0.001", "USD", "INVALID_AMOUNT_PRECISION"),
        ("1.5", "JPY", "INVALID_AMOUNT_PRECISION"),
        ("1.2345", "BHD", "INVALID_AMOUNT_PRECISION"),
        ("10000000000", "USD", "INVALID_AMOUNT"),
        ("1", "ABC", "INVALID_CURRENCY"),
        ("1", "XXX", "INVALID_CURRENCY"),
        ("1", "USDT", "INVALID_CURRENCY"),
        ("1", "", "INVALID_CURRENCY"),
    ],
)
def test_invalid_amounts_and_currencies(amount: str, currency: str, code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_payment_input(payment_input(amount=amount, currency=currency or " "), user_id=USER)
    assert raised.value.code == code


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-inf", True, None, [], "1,00", "0x10", float("nan")])
def test_non_numbers_are_rejected_by_the_wire_model(amount: Any) -> None:
    with pytest.raises(ValidationError):
        payment_input(amount=amount)


def test_the_fingerprint_ignores_the_key_and_formatting_but_not_the_content() -> None:
    def fp(**values: Any) -> str:
        return fingerprint(validate_payment_input(payment_input(**values), user_id=USER))

    assert fp(amount="10", idempotencyKey="a") == fp(amount=10.0, idempotencyKey="b") == fp(amount="10.00")
    assert fp(amount="10.00") != fp(amount="10.01")
    assert fp(currency="USD") != fp(currency="EUR")
    assert fp() != fp(orderId=str(uuid.UUID(int=9)))


def row(quantity: int, threshold: int = 10) -> InventoryRow:
    return InventoryRow(
        warehouse_id=uuid.UUID(int=1), product_id=uuid.UUID(int=2), quantity=quantity, low_stock_threshold=threshold
    )


@pytest.mark.parametrize(
    ("old", "new", "crosses"),
    [
        (row(11), row(10), False),
        (row(10), row(9), True),
        (row(9), row(2), False),
        (row(2), row(20), False),
        (None, row(1), True),
        (None, row(50), False),
        (row(5, threshold=4), row(5, threshold=6), True),
    ],
)
def test_a_crossing_is_from_not_low_to_low(old: InventoryRow | None, new: InventoryRow, crosses: bool) -> None:
    assert crosses_below(old, new) is crosses


def charge(amount: str, key: str = "k") -> ChargeRequest:
    return ChargeRequest(idempotency_key=key, order_id=ORDER, user_id=USER, amount=Decimal(amount), currency="USD")


async def test_the_simulated_provider_is_deterministic() -> None:
    provider = SimulatedProvider(timeout_amounts=[Decimal("99.99")])
    approved = await provider.charge(charge("10.00", key="same"))
    again = await provider.charge(charge("10.00", key="same"))
    other = await provider.charge(charge("10.00", key="other"))
    declined = await provider.charge(charge("20.13"))
    assert approved == again and approved.status == "approved"
    assert other.reference != approved.reference
    assert declined.status == "declined" and declined.decline_reason == "card_declined"
    for amount in ("10.42", "99.99"):
        with pytest.raises(ProviderTimeout):
            await provider.charge(charge(amount))


def test_a_bad_configuration_exits_2_without_echoing_the_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from actions.__main__ import load_settings

    monkeypatch.setenv("ACTIONS_WEBHOOK_SECRET", "hunter2")
    monkeypatch.setenv("ACTIONS_DATABASE_URL", "postgres://u@db/app")
    with pytest.raises(SystemExit) as exited:
        load_settings()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "ACTIONS_WEBHOOK_SECRET" in err
    assert "hunter2" not in err
