from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.money import Money, money
from domain.risk.bands import Band
from domain.risk.distribution import Bucket, Distribution, Tally
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


@strawberry.type(description="How many customers are in a band.")
class RiskBandCount:
    band: Band
    count: int


def band_counts(tally: Tally) -> list[RiskBandCount]:
    return [RiskBandCount(band=band, count=count) for band, count in tally.bands.items()]


@strawberry.type(description="How many current scores show a sign, in all and per band.")
class RiskSignCount:
    sign: Sign
    count: int
    bands: list[RiskBandCount] = strawberry.field(description="Every band listed.")

    @classmethod
    def from_tally(cls, sign: Sign, tally: Tally) -> "RiskSignCount":
        return cls(sign=sign, count=tally.count, bands=band_counts(tally))


@strawberry.type(
    description="Scored customers with `from` <= probability < `to` (the last bin includes 1)."
)
class RiskBucket:
    from_: float = strawberry.field(name="from")
    to: float
    count: int
    bands: list[RiskBandCount] = strawberry.field(description="Every band listed.")
    signs: list[RiskSignCount] = strawberry.field(
        description="Those whose score shows each sign, every sign listed."
    )

    @classmethod
    def from_bucket(cls, bucket: Bucket) -> "RiskBucket":
        return cls(
            from_=bucket.lower,
            to=bucket.upper,
            count=bucket.customers.count,
            bands=band_counts(bucket.customers),
            signs=[RiskSignCount.from_tally(s, t) for s, t in bucket.signs.items()],
        )


@strawberry.type(
    description="The shop's current scores for charts: per band, per sign shown (strength "
    "0.5 or more), and a histogram of probability; every count also split by band."
)
class RiskDistribution:
    count: int = strawberry.field(description="Current scores, unscored ones included.")
    bands: list[RiskBandCount] = strawberry.field(description="Every band listed.")
    signs: list[RiskSignCount] = strawberry.field(description="Every sign listed.")
    histogram: list[RiskBucket] = strawberry.field(
        description="Equal bins of probability over [0, 1], lowest first; unscored excluded."
    )

    @classmethod
    def from_distribution(cls, distribution: Distribution) -> "RiskDistribution":
        return cls(
            count=distribution.customers.count,
            bands=band_counts(distribution.customers),
            signs=[RiskSignCount.from_tally(s, t) for s, t in distribution.signs.items()],
            histogram=[RiskBucket.from_bucket(bucket) for bucket in distribution.histogram],
        )
