import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class MessageStatus(StrEnum):
    PLANNED = "planned"
    CLAIMED = "claimed"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Message(TenantModel, table=True):
    """One logical message, created once; `idempotency_key` also goes to the provider."""

    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key"),
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
        ForeignKeyConstraint(["shop_id", "campaign_id"], ["campaign.shop_id", "campaign.id"]),
        ForeignKeyConstraint(["shop_id", "enrollment_id"], ["enrollment.shop_id", "enrollment.id"]),
        Index("ix_message_due", "shop_id", "status", "scheduled_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID
    campaign_id: uuid.UUID | None = None
    enrollment_id: uuid.UUID | None = None
    channel: str = Field(max_length=16)
    idempotency_key: str = Field(max_length=200)
    status: MessageStatus = Field(default=MessageStatus.PLANNED, sa_type=String(16))
    scheduled_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    provider_message_id: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MessageEvent(TenantModel, table=True):
    __tablename__ = "message_event"
    __table_args__ = (
        ForeignKeyConstraint(["shop_id", "message_id"], ["message.shop_id", "message.id"]),
        Index("ix_message_event_message", "shop_id", "message_id", "occurred_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    message_id: uuid.UUID
    kind: str = Field(max_length=32)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Task(TenantModel, table=True):
    """Work for shop staff: a call or a postal DM that a person carries out."""

    __table_args__ = (
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
        ForeignKeyConstraint(["shop_id", "message_id"], ["message.shop_id", "message.id"]),
        Index("ix_task_open", "shop_id", "status", "due_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID
    message_id: uuid.UUID | None = None
    kind: str = Field(max_length=16)
    status: TaskStatus = Field(default=TaskStatus.OPEN, sa_type=String(16))
    due_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    assignee: str | None = Field(default=None, max_length=200)
    note: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
