"""The shape of a shop's current risk, for charts: customers per band, per sign shown, and a
histogram of probability, every count split by band.

One grouped statement over the shop's current scores (by band and probability bucket, with a
count per shown sign) gives the whole cube; the marginals are summed here, so the parts always
agree with each other and with the listing filters (`riskBands`, `signs`) of the same moment.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, Table, case, cast, func, select

from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.ids import ShopId
from domain.queries import dialect_of, rows
from domain.risk.bands import BANDS, Band
from domain.risk.models import RiskScore
from domain.risk.queries import shows_any
from domain.risk.signs import Sign

MAX_BUCKETS = 100
SIGNS: tuple[Sign, ...] = tuple(Sign)

_SCORE: Table = RiskScore.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Tally:
    """Customers per band, every band listed (zero included)."""

    bands: Mapping[Band, int]

    @property
    def count(self) -> int:
        return sum(self.bands.values())


@dataclass(frozen=True, slots=True)
class Bucket:
    """Scores with `lower` <= probability < `upper` (the last bucket includes 1)."""

    lower: float
    upper: float
    customers: Tally
    signs: Mapping[Sign, Tally]  # those whose score shows each sign, every sign listed


@dataclass(frozen=True, slots=True)
class Distribution:
    customers: Tally  # every current score, unscored ones included
    signs: Mapping[Sign, Tally]  # scores showing each sign (see `domain.risk.signs.SHOWN_AT`)
    histogram: list[Bucket]  # scored customers only, in probability order


async def risk_distribution(
    session: AsyncSession, shop_id: ShopId, *, buckets: int = 10
) -> Distribution:
    """The shop's current scores counted by band, by shown sign and in `buckets` equal
    probability bins over [0, 1]; raises `InvalidInput` unless 1 <= `buckets` <= 100."""
    if not 1 <= buckets <= MAX_BUCKETS:
        raise InvalidInput(f"buckets must be between 1 and {MAX_BUCKETS}", "buckets")
    score = _SCORE.c
    dialect = dialect_of(session)
    bucket = _bucket(score.probability, buckets, dialect)
    shown = [func.count(case((shows_any(score.shown_signs, {sign}), 1))) for sign in SIGNS]
    statement = (
        select(score.band, bucket, func.count(), *shown)
        .where(score.shop_id == shop_id)
        .group_by(score.band, bucket)
    )
    cube: dict[tuple[Band, int | None], list[int]] = {}
    for band, index, count, *signs in await rows(session, statement):
        key = (Band(band), None if index is None else min(int(index), buckets - 1))
        counts = cube.setdefault(key, [0] * (1 + len(SIGNS)))
        for position, value in enumerate((count, *signs)):
            counts[position] += int(value)
    return Distribution(
        customers=_tally(cube, 0),
        signs={sign: _tally(cube, 1 + n) for n, sign in enumerate(SIGNS)},
        histogram=[
            Bucket(
                lower=index / buckets,
                upper=(index + 1) / buckets,
                customers=_tally(cube, 0, index),
                signs={sign: _tally(cube, 1 + n, index) for n, sign in enumerate(SIGNS)},
            )
            for index in range(buckets)
        ],
    )


def _bucket(
    probability: ColumnElement[float | None], buckets: int, dialect: str
) -> ColumnElement[int]:
    """The bucket of `probability`: floor(probability * buckets), 1 in the last one; NULL
    for none."""
    scaled = probability * buckets
    # PostgreSQL's CAST rounds; SQLite's truncates, which is the floor for p >= 0.
    floor = func.floor(scaled) if dialect == "postgresql" else cast(scaled, Integer)
    return case((probability >= 1.0, buckets - 1), else_=floor)


def _tally(
    cube: Mapping[tuple[Band, int | None], list[int]], column: int, bucket: int | None = None
) -> Tally:
    """Column `column` of the cube per band: in one bucket, or over every row (None)."""
    bands = dict.fromkeys(BANDS, 0)
    for (band, index), counts in cube.items():
        if bucket is None or index == bucket:
            bands[band] += counts[column]
    return Tally(bands)
