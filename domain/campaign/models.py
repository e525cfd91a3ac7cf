import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint
from sqlmodel import Field

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Campaign(TenantModel, table=True):
    __table_args__ = (UniqueConstraint("shop_id", "name"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    kind: str = Field(default="custom", max_length=32)
    status: CampaignStatus = Field(default=CampaignStatus.DRAFT, sa_type=String(16))
    trigger: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    # Share of enrolled customers held out (no sends) to measure lift, in per-mille.
    holdout_permille: int = 100
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CampaignStep(TenantModel, table=True):
    __tablename__ = "campaign_step"
    __table_args__ = (
        UniqueConstraint("shop_id", "campaign_id", "position"),
        ForeignKeyConstraint(["shop_id", "campaign_id"], ["campaign.shop_id", "campaign.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID
    position: int
    channel: str = Field(max_length=16)
    delay_minutes: int = 0
    template: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)


class Enrollment(TenantModel, table=True):
    __table_args__ = (
        # One enrollment per customer per campaign cycle (e.g. per qualifying order).
        UniqueConstraint("shop_id", "campaign_id", "customer_id", "cycle_key"),
        ForeignKeyConstraint(["shop_id", "campaign_id"], ["campaign.shop_id", "campaign.id"]),
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID
    customer_id: uuid.UUID
    cycle_key: str = Field(default="", max_length=200)
    status: str = Field(default="active", max_length=16)
    is_holdout: bool = False
    current_position: int = 0
    enrolled_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
