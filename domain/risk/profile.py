"""What is normal for a shop as of a cut-off: its rhythm, first baskets and returns."""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.history import Purchases
from domain.risk.rhythm import PRIOR, ShopRhythm, fit_rhythm

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Shop-independent defaults for a shop with no repeat purchases yet.
DEFAULT_RHYTHM_DAYS = 60.0
# A customer's own mean interval counts as this many intervals against the shop's rhythm.
SHRINK_INTERVALS = 2.0
# Returning customers a segment (first product and mall) needs before it gets its own baseline.
MIN_SEGMENT_RETURNS = 30
# Segment codes are combined with days into one sort key; days stay far below this.
SEGMENT_STRIDE = 1e7


@dataclass(frozen=True, slots=True)
class ShopProfile:
    """Shop-level baselines from the purchases before one cut-off."""

    rhythm: ShopRhythm
    rhythm_days: float  # median days between consecutive purchases
    shrink_intervals: float
    typical_first_amount: float
    typical_first_quantity: float
    mean_order_value: float
    # A customer's own mean order value counts as this many orders against the shop's mean.
    order_value_weight: float
    returns: FloatArray  # days from first to second purchase of returning customers, sorted
    segment_keys: FloatArray  # segment * SEGMENT_STRIDE + days, sorted; empty without segments

    def median_return_days(self, segment: IntArray | None, size: int) -> FloatArray:
        """Median days to a second purchase, per customer's segment where it has enough data."""
        shop = float(np.median(self.returns)) if self.returns.shape[0] else self.rhythm_days
        result = np.full(size, shop)
        if segment is None or self.segment_keys.shape[0] == 0:
            return result
        low, high = self._segment_bounds(segment)
        enough = (high - low) >= MIN_SEGMENT_RETURNS
        middle = np.minimum(low + (high - low) // 2, self.segment_keys.shape[0] - 1)
        days = self.segment_keys[middle] - segment * SEGMENT_STRIDE
        return np.asarray(np.where(enough, days, result), dtype=np.float64)

    def return_share(self, age: FloatArray, segment: IntArray | None) -> FloatArray:
        """Share of returning customers whose second purchase came within `age` days."""
        if self.returns.shape[0] == 0:
            return np.zeros(age.shape[0])
        within_shop = np.searchsorted(self.returns, age, side="right")
        shop = np.asarray(within_shop / self.returns.shape[0], dtype=np.float64)
        if segment is None or self.segment_keys.shape[0] == 0:
            return shop
        low, high = self._segment_bounds(segment)
        within = np.searchsorted(self.segment_keys, segment * SEGMENT_STRIDE + age, side="right")
        own = (within - low) / np.maximum(high - low, 1)
        enough = (high - low) >= MIN_SEGMENT_RETURNS
        return np.asarray(np.where(enough, own, shop), dtype=np.float64)

    def _segment_bounds(self, segment: IntArray) -> tuple[IntArray, IntArray]:
        base = segment * SEGMENT_STRIDE
        low = np.searchsorted(self.segment_keys, base - 0.5, side="left")
        high = np.searchsorted(self.segment_keys, base + SEGMENT_STRIDE - 0.5, side="left")
        known = segment >= 0
        return np.where(known, low, 0), np.where(known, high, 0)


def shop_profile(
    purchases: Purchases,
    cutoff: float,
    *,
    counts: IntArray,
    first_day: FloatArray,
    second_day: FloatArray,
    last_day: FloatArray,
    segment: IntArray | None = None,
    seed: int = 0,
) -> ShopProfile:
    """Baselines from occasions before `cutoff`; `counts` etc. come from the same snapshot."""
    has = counts > 0
    returned = counts > 1
    before = purchases.day < cutoff
    same = purchases.customer[1:] == purchases.customer[:-1]
    intervals = np.diff(purchases.day)[same & before[1:]].astype(np.float64)
    rhythm_days = float(np.median(intervals)) if intervals.shape[0] else DEFAULT_RHYTHM_DAYS
    rhythm_days = max(rhythm_days, 1.0)
    first_rows = purchases.start[:-1][has]
    to_second = second_day[returned] - first_day[returned]
    keys = np.zeros(0)
    if segment is not None:
        keyed = segment[returned] >= 0
        keys = np.sort(segment[returned][keyed] * SEGMENT_STRIDE + to_second[keyed])
    x = np.maximum(counts - 1, 0).astype(np.float64)
    rhythm = (
        fit_rhythm(x[has], last_day[has] - first_day[has], cutoff - first_day[has], seed=seed)
        if has.any()
        else PRIOR
    )
    value, weight = _order_value(purchases, before, counts)
    return ShopProfile(
        rhythm=rhythm,
        rhythm_days=rhythm_days,
        shrink_intervals=SHRINK_INTERVALS,
        typical_first_amount=_median(purchases.amount[first_rows]),
        typical_first_quantity=_median(purchases.quantity[first_rows]),
        mean_order_value=value,
        order_value_weight=weight,
        returns=np.sort(to_second),
        segment_keys=keys,
    )


def expected_order_value(
    profile: ShopProfile, total_amount: FloatArray, purchases: IntArray
) -> FloatArray:
    """Each customer's expected order value: their mean shrunk towards the shop's mean."""
    weight = profile.order_value_weight
    return np.asarray(
        (total_amount + weight * profile.mean_order_value) / (purchases + weight),
        dtype=np.float64,
    )


def _order_value(
    purchases: Purchases, before: NDArray[np.bool_], counts: IntArray
) -> tuple[float, float]:
    """The shop's mean order value and how many orders a customer's own mean is worth.

    The weight is the ratio of within-customer to between-customer variance (the
    empirical-Bayes shrinkage of a normal mean), clipped to a sane range.
    """
    if not before.any():
        return 0.0, 1.0
    amount = purchases.amount[before]
    cust = purchases.customer[before]
    size = purchases.n_customers
    total = np.bincount(cust, weights=amount, minlength=size)
    squares = np.bincount(cust, weights=amount * amount, minlength=size)
    has = counts > 0
    n = counts[has].astype(np.float64)
    mean_i = total[has] / n
    mean = float(amount.mean())
    within_dof = float((n - 1).sum())
    within = float((squares[has] - n * mean_i**2).sum()) / within_dof if within_dof > 0 else 0.0
    between = float(mean_i.var()) - float((within / n).mean())
    if within <= 0 or between <= 0:
        return mean, 1.0
    return mean, float(np.clip(within / between, 0.5, 50.0))


def _median(values: FloatArray) -> float:
    return float(np.median(values)) if values.shape[0] else 0.0
