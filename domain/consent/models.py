import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint
from sqlmodel import Field

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LINE = "line"
    POSTAL = "postal"
    CALL = "call"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class Consent(TenantModel, table=True):
    __table_args__ = (
        UniqueConstraint("shop_id", "customer_id", "channel", "purpose"),
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID
    channel: Channel = Field(sa_type=String(16))
    purpose: str = Field(default="marketing", max_length=32)
    status: ConsentStatus = Field(default=ConsentStatus.UNKNOWN, sa_type=String(16))
    source: str = Field(default="", max_length=100)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    proof: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
