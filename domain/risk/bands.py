"""Risk bands: a shop's probability thresholds for low, medium, high and critical."""

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import case, update

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
