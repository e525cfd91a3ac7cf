from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.money import Money, money
from domain.risk.bands import Band
from domain.risk.queries import PointRow, ReasonRow, ScoreRow
from domain.risk.signs import Sign

strawberry.enum(Band, name="RiskBand", description="A shop's band of P(no purchase).")
strawberry.enum(Sign, name="RiskSign", description="A sign of silent churn.")


@strawberry.type(description="One sign behind a risk score, with the numbers it rests on.")
class RiskReason:
    sign: Sign
    strength: float = strawberry.field(description="How strongly the sign shows, 0-1.")
    evidence: JSON = strawberry.field(
        description="The numbers behind the sign, by name (amounts in the minor unit)."
    )
    summary: str = strawberry.field(description="One line a shop owner can read.")

    @classmethod
    def from_row(cls, row: ReasonRow) -> "RiskReason":
        return cls(
            sign=row.sign, strength=row.strength, evidence=JSON(row.evidence), summary=row.summary
        )


@strawberry.type(description="A customer's current risk of not buying again.")
class RiskScore:
    probability: float | None = strawberry.field(
        description="P(no purchase within `horizonDays`); null when unscored."
    )
    expected_purchases: float | None = strawberry.field(
        description="Expected number of purchases within `horizonDays`."
    )
    expected_spend: Money | None = strawberry.field(
        description="Expected spend within `horizonDays`."
    )
    band: Band
    reasons: list[RiskReason] = strawberry.field(
        description="The signs that apply, largest contribution first."
    )
    horizon_days: int
    as_of: datetime = strawberry.field(description="The moment the score describes.")

    @classmethod
    def from_row(cls, row: ScoreRow, currency: str) -> "RiskScore":
        return cls(
            probability=row.probability,
            expected_purchases=row.expected_purchases,
            expected_spend=None
            if row.expected_spend is None
            else money(row.expected_spend, currency),
            band=row.band,
            reasons=[RiskReason.from_row(reason) for reason in row.reasons],
            horizon_days=row.horizon_days,
            as_of=row.as_of,
        )


@strawberry.type(description="A customer's risk at one past moment.")
class RiskPoint:
    as_of: datetime
    probability: float | None
    band: Band

    @classmethod
    def from_row(cls, row: PointRow) -> "RiskPoint":
        return cls(as_of=row.as_of, probability=row.probability, band=row.band)


@strawberry.type(description="How many of the shop's scored customers are in a band.")
class RiskBandCount:
    band: Band
    count: int
