import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from domain.db import TenantChildModel, UTCDateTime, utcnow
from domain.ids import new_id


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class SubscriptionEventKind(StrEnum):
    STARTED = "started"
    RENEWED = "renewed"
    SKIPPED = "skipped"
    # A skipped delivery reinstated: it takes back that skip (the skip stays in history).
    UNSKIPPED = "unskipped"
    POSTPONED = "postponed"
    PAUSED = "paused"
    RESUMED = "resumed"
    CANCELLED = "cancelled"


class Subscription(TenantChildModel, table=True):
    __table_args__ = (
        UniqueConstraint("shop_id", "connection_id", "external_id"),
        ForeignKeyConstraint(["shop_id", "connection_id"], ["connection.shop_id", "connection.id"]),
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
        Index("ix_subscription_customer", "shop_id", "customer_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connection_id: uuid.UUID
    customer_id: uuid.UUID
    identity_id: uuid.UUID | None = None
    external_id: str = Field(max_length=200)
    status: SubscriptionStatus = Field(default=SubscriptionStatus.ACTIVE, sa_type=String(16))
    interval_days: int = 30
    product_title: str = Field(default="", max_length=500)
    started_at: datetime = Field(sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_delivery_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    source_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SubscriptionEvent(TenantChildModel, table=True):
    __tablename__ = "subscription_event"
    __table_args__ = (
        # `dedup_key` is the mall's event id, or kind + time when the mall gives none.
        UniqueConstraint("shop_id", "subscription_id", "dedup_key"),
        ForeignKeyConstraint(
            ["shop_id", "subscription_id"], ["subscription.shop_id", "subscription.id"]
        ),
        Index("ix_subscription_event_time", "shop_id", "subscription_id", "occurred_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    subscription_id: uuid.UUID
    dedup_key: str = Field(max_length=200)
    kind: SubscriptionEventKind = Field(sa_type=String(16))
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    reason: str | None = Field(default=None, sa_type=Text)
