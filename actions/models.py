"""SQLAlchemy 2 models mirroring migrations/default/*/up.sql. The migrations own the schema: never
``create_all()``. ``tests/actions/test_models.py`` checks these against a migrated database."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CHAR, ForeignKey, Integer, MetaData, Numeric, Text, text
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Document",
    "DocumentCollaborator",
    "DocumentHistory",
    "Inventory",
    "LowStockAlert",
    "Order",
    "OrderConfirmation",
    "OrderItem",
    "Payment",
    "PaymentIdempotency",
    "Product",
    "User",
    "Warehouse",
]

_NOW = text("now()")
_UUID = text("gen_random_uuid()")


class Base(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = {
        uuid.UUID: UUID(as_uuid=True),
        datetime: TIMESTAMP(timezone=True),
        str: Text(),
        int: Integer(),
        Decimal: Numeric(12, 2),
        dict[str, Any]: JSONB(),
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    email: Mapped[str]
    display_name: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    sku: Mapped[str]
    name: Mapped[str]
    description: Mapped[str | None]
    price: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(CHAR(3), server_default=text("'USD'"))
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class Warehouse(Base):
    __tablename__ = "warehouses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    code: Mapped[str]
    name: Mapped[str]
    city: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class Inventory(Base):
    __tablename__ = "inventory"

    warehouse_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("warehouses.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    quantity: Mapped[int] = mapped_column(server_default=text("0"))
    low_stock_threshold: Mapped[int] = mapped_column(server_default=text("10"))
    updated_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class LowStockAlert(Base):
    __tablename__ = "low_stock_alerts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    warehouse_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("warehouses.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    threshold: Mapped[int]
    event_id: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    total: Mapped[Decimal] = mapped_column(server_default=text("0"))
    currency: Mapped[str] = mapped_column(CHAR(3), server_default=text("'USD'"))
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(CHAR(3))
    status: Mapped[str]
    provider: Mapped[str]
    provider_reference: Mapped[str | None]
    idempotency_key: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class PaymentIdempotency(Base):
    __tablename__ = "payment_idempotency"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(primary_key=True)
    request_fingerprint: Mapped[str]
    state: Mapped[str] = mapped_column(server_default=text("'in_progress'"))
    response_status: Mapped[int | None]
    response_body: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class OrderConfirmation(Base):
    __tablename__ = "order_confirmations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    total: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(CHAR(3))
    event_id: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str]
    content: Mapped[str] = mapped_column(server_default=text("''"))
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class DocumentCollaborator(Base):
    __tablename__ = "document_collaborators"

    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class DocumentHistory(Base):
    __tablename__ = "document_history"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=_UUID)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    version: Mapped[int]
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    diff: Mapped[str]
    content_after: Mapped[str]
    event_id: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)
