import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class RiskScore(TenantModel, table=True):
    """A customer's current risk: P(no purchase in the next `horizon_days`) with reasons."""

    __tablename__ = "risk_score"
    __table_args__ = (
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
        Index("ix_risk_score_probability", "shop_id", "probability"),
        Index("ix_risk_score_band", "shop_id", "band"),
    )

    customer_id: uuid.UUID = Field(primary_key=True)
    probability: float | None = None
    expected_purchases: float | None = None
    expected_spend: int | None = None
    band: str = Field(default="unscored", max_length=16)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONValue)
    horizon_days: int = 90
    as_of: datetime = Field(sa_type=UTCDateTime)
    model_version: str = Field(default="", max_length=64)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RiskScoreHistory(TenantModel, table=True):
    __tablename__ = "risk_score_history"
    __table_args__ = (
        UniqueConstraint("shop_id", "customer_id", "as_of"),
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID
    probability: float | None = None
    expected_purchases: float | None = None
    band: str = Field(default="unscored", max_length=16)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONValue)
    as_of: datetime = Field(sa_type=UTCDateTime)
