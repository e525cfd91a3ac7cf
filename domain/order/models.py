import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlmodel import Field

from domain.db import TenantChildModel, UTCDateTime, utcnow
from domain.ids import new_id


class OrderStatus(StrEnum):
    OPEN = "open"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class Product(TenantChildModel, table=True):
    __table_args__ = (
        UniqueConstraint("shop_id", "connection_id", "external_id"),
        ForeignKeyConstraint(["shop_id", "connection_id"], ["connection.shop_id", "connection.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connection_id: uuid.UUID
    external_id: str = Field(max_length=200)
    sku: str | None = Field(default=None, max_length=200)
    title: str = Field(default="", max_length=500)
    price: int | None = None
    currency: str = Field(default="JPY", max_length=3)


class Order(TenantChildModel, table=True):
    """An order; amounts are integers in the currency's minor unit (JPY has none).

    A cancelled order is no purchase; a refunded one was fully refunded. Net spend of any other
    order is `total_amount - refunded_amount` (partial refunds).
    """

    __table_args__ = (
        UniqueConstraint("shop_id", "connection_id", "external_id"),
        ForeignKeyConstraint(["shop_id", "connection_id"], ["connection.shop_id", "connection.id"]),
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
        Index("ix_order_customer", "shop_id", "customer_id", "ordered_at"),
        Index("ix_order_ordered_at", "shop_id", "ordered_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connection_id: uuid.UUID
    customer_id: uuid.UUID
    # The identity the mall named as buyer: which customer it belongs to again after an unmerge.
    identity_id: uuid.UUID | None = None
    external_id: str = Field(max_length=200)
    ordered_at: datetime = Field(sa_type=UTCDateTime)
    status: OrderStatus = Field(default=OrderStatus.OPEN, sa_type=String(16))
    currency: str = Field(default="JPY", max_length=3)
    total_amount: int = Field(default=0, sa_type=BigInteger)
    refunded_amount: int = Field(default=0, sa_type=BigInteger)
    item_quantity: int = 0
    subscription_external_id: str | None = Field(default=None, max_length=200)
    # The mall's own last-modified time: an older update never overwrites a newer one.
    source_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Digest of the canonical record last ingested, lines included: a re-delivery of the same
    # record is recognised without reading the lines back.
    source_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrderLine(TenantChildModel, table=True):
    __tablename__ = "order_line"
    __table_args__ = (
        UniqueConstraint("shop_id", "order_id", "position"),
        ForeignKeyConstraint(["shop_id", "order_id"], ["order.shop_id", "order.id"]),
        ForeignKeyConstraint(["shop_id", "product_id"], ["product.shop_id", "product.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    order_id: uuid.UUID
    position: int
    product_id: uuid.UUID | None = None
    sku: str | None = Field(default=None, max_length=200)
    title: str = Field(default="", max_length=500)
    quantity: int = 1
    unit_price: int | None = None
    amount: int = Field(default=0, sa_type=BigInteger)
