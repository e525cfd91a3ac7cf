import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, SmallInteger, UniqueConstraint
from sqlmodel import Field

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id

# How far, in probability, a score must move from a customer's last history row to be written
# as a new one (a band change always is).
HISTORY_STEP = 0.01
# P(no purchase in the horizon) at which the medium, high and critical bands start.
DEFAULT_BAND_MEDIUM = 0.5
DEFAULT_BAND_HIGH = 0.75
DEFAULT_BAND_CRITICAL = 0.9


class RiskScore(TenantModel, table=True):
    """A customer's current risk: P(no purchase in the next `horizon_days`) with reasons."""

    __tablename__ = "risk_score"
    __table_args__ = (
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
        # The risk order (ties by customer), and band filters: a band is a range of
        # probability under the shop's thresholds (`domain.risk.bands.band_condition`), so
        # no index on `band`; each index here costs the nightly recompute, which rewrites
        # every row.
        Index("ix_risk_score_probability", "shop_id", "probability", "customer_id"),
    )

    customer_id: uuid.UUID = Field(primary_key=True)
    probability: float | None = None
    expected_purchases: float | None = None
    expected_spend: int | None = None
    band: str = Field(default="unscored", max_length=16)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONValue)
    # The signs `reasons` show (strength at least `signs.SHOWN_AT`), one bit per sign
    # (`reasons.sign_mask`): what sign filters and the distribution read, without the JSON.
    shown_signs: int = Field(default=0, sa_type=SmallInteger)
    horizon_days: int = 90
    as_of: datetime = Field(sa_type=UTCDateTime)
    model_version: str = Field(default="", max_length=64)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The probability of the customer's latest history row: history is written on a change
    # (`domain.risk.writing`), measured from what was last written, not from yesterday.
    recorded_probability: float | None = None


class RiskScoreHistory(TenantModel, table=True):
    """A customer's risk over time: a row per (customer, as_of) where the score changed.

    A run writes a customer's row when it is their first score, a backfill (older than the
    current score), a new band, or a probability at least `HISTORY_STEP` away from the last
    row's; between two rows the probability stayed within that step of the earlier one.

    No foreign keys: a derived, append-only log that a full recompute grows by a row per
    customer at once. Per-row foreign-key triggers would double the cost of that write; rows
    are only ever written for customers read in the same transaction, and whatever removes a
    customer removes their history too.
    """

    __tablename__ = "risk_score_history"
    __table_args__ = (UniqueConstraint("shop_id", "customer_id", "as_of"),)

    shop_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID
    probability: float | None = None
    expected_purchases: float | None = None
    band: str = Field(default="unscored", max_length=16)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONValue)
    as_of: datetime = Field(sa_type=UTCDateTime)


class ShopRiskModel(TenantModel, table=True):
    """A shop's band thresholds and its last full fit, which incremental rescoring reuses.

    `parameters` is the fitted model and shop profile as JSON (see `domain.risk.state`); it is
    replaced by every full recompute at an `as_of` no older than `fitted_as_of`.
    """

    __tablename__ = "risk_model"

    band_medium: float = DEFAULT_BAND_MEDIUM
    band_high: float = DEFAULT_BAND_HIGH
    band_critical: float = DEFAULT_BAND_CRITICAL
    fitted_as_of: datetime | None = Field(default=None, sa_type=UTCDateTime)
    horizon_days: int | None = None
    model_version: str = Field(default="", max_length=64)
    parameters: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
