"""Risk bands: a shop's probability thresholds for low, medium, high and critical."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, update

from domain.db import AsyncSession, upsert, utcnow
from domain.errors import InvalidInput
from domain.ids import ShopId
from domain.ingest.statements import table_of
from domain.risk.models import (
    DEFAULT_BAND_CRITICAL,
    DEFAULT_BAND_HIGH,
    DEFAULT_BAND_MEDIUM,
    RiskScore,
    ShopRiskModel,
)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


class Band(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"
    # Nothing to judge by: no orders, or every order cancelled or refunded.
    UNSCORED = "unscored"


# Indexed by the codes `assign_bands` returns.
BANDS: tuple[Band, ...] = (Band.LOW, Band.MEDIUM, Band.HIGH, Band.CRITICAL, Band.UNSCORED)


@dataclass(frozen=True, slots=True)
class BandThresholds:
    """P(no purchase in the horizon) at which each band starts; below `medium` is low."""

    medium: float = DEFAULT_BAND_MEDIUM
    high: float = DEFAULT_BAND_HIGH
    critical: float = DEFAULT_BAND_CRITICAL

    def __post_init__(self) -> None:
        for name in ("medium", "high", "critical"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise InvalidInput(f"the {name} threshold must lie strictly between 0 and 1", name)
        if not self.medium < self.high < self.critical:
            raise InvalidInput("thresholds must rise: medium < high < critical", "thresholds")

    def band_of(self, probability: float | None) -> Band:
        """The band of one probability (None: unscored)."""
        if probability is None:
            return Band.UNSCORED
        return BANDS[int(assign_bands(np.array([probability]), np.array([True]), self)[0])]


def assign_bands(
    probability: FloatArray, scorable: BoolArray, thresholds: BandThresholds
) -> NDArray[np.int8]:
    """Each customer's band as a code into `BANDS`; customers not scorable are unscored."""
    edges = np.array([thresholds.medium, thresholds.high, thresholds.critical])
    codes = np.searchsorted(edges, probability, side="right").astype(np.int8)
    return np.where(scorable, codes, np.int8(BANDS.index(Band.UNSCORED))).astype(np.int8)


def stored_thresholds(shop_id: ShopId) -> tuple[ColumnElement[float], ...]:
    """The shop's medium, high and critical thresholds as SQL (the defaults if never set):
    scalar subqueries, evaluated once per statement, so a range on them can use an index."""
    model = table_of(ShopRiskModel).c
    return tuple(
        func.coalesce(select(column).where(model.shop_id == shop_id).scalar_subquery(), default)
        for column, default in (
            (model.band_medium, DEFAULT_BAND_MEDIUM),
            (model.band_high, DEFAULT_BAND_HIGH),
            (model.band_critical, DEFAULT_BAND_CRITICAL),
        )
    )


def band_condition(
    probability: ColumnElement[float | None],
    scored: ColumnElement[bool],
    bands: Collection[Band],
    thresholds: Sequence[ColumnElement[float]],
) -> ColumnElement[bool]:
    """A current score in one of `bands`, as a range of its probability.

    `thresholds` are where medium, high and critical start (`stored_thresholds`). The same
    test as the stored band (every score is banded with the shop's thresholds, and re-banded
    when they change), in a form the `(shop_id, probability)` index serves: adjacent bands
    become one range. `scored` tells a stored score from none: never-scored customers match
    no band, unscored ones only `UNSCORED`.
    """
    scored_bands = BANDS[:-1]
    starts = (None, *thresholds)
    runs: list[list[int]] = []  # indexes into `scored_bands` of adjacent wanted bands
    for index, band in enumerate(scored_bands):
        if band not in bands:
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    ranges: list[ColumnElement[bool]] = []
    for run in runs:
        low = starts[run[0]]
        bounds = [probability.is_not(None) if low is None else probability >= low]
        if run[-1] + 1 < len(starts):
            bounds.append(probability < starts[run[-1] + 1])
        ranges.append(and_(*bounds))
    if Band.UNSCORED in bands:
        ranges.append(and_(scored, probability.is_(None)))
    return or_(*ranges) if ranges else false()


async def get_band_thresholds(session: AsyncSession, shop_id: ShopId) -> BandThresholds:
    """The shop's thresholds, or the defaults when it never set any."""
    row = await session.get(ShopRiskModel, shop_id)
    if row is None:
        return BandThresholds()
    return BandThresholds(row.band_medium, row.band_high, row.band_critical)


async def set_band_thresholds(
    session: AsyncSession, shop_id: ShopId, thresholds: BandThresholds
) -> int:
    """Store the shop's thresholds and re-band its current scores; how many bands changed.

    History keeps the bands as they were when each score was computed.
    """
    values = {
        "shop_id": shop_id,
        "band_medium": thresholds.medium,
        "band_high": thresholds.high,
        "band_critical": thresholds.critical,
        "updated_at": utcnow(),
    }
    await session.exec(
        upsert(
            session,
            ShopRiskModel,
            [values],
            keys=["shop_id"],
            update=["band_medium", "band_high", "band_critical", "updated_at"],
        )
    )
    score = table_of(RiskScore)
    band = case(
        (score.c.probability >= thresholds.critical, Band.CRITICAL.value),
        (score.c.probability >= thresholds.high, Band.HIGH.value),
        (score.c.probability >= thresholds.medium, Band.MEDIUM.value),
        else_=Band.LOW.value,
    )
    result = await session.exec(
        update(score)
        .where(
            score.c.shop_id == shop_id,
            score.c.probability.is_not(None),
            score.c.band != band,
        )
        .values(band=band)
    )
    return int(result.rowcount)
