"""What is normal for a shop as of a cut-off: its rhythm, first baskets and returns."""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.history import Purchases
from domain.risk.returns import ReturnCurve, return_curve
from domain.risk.rhythm import PRIOR, ShopRhythm, fit_rhythm

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Shop-independent defaults for a shop with no repeat purchases yet.
DEFAULT_RHYTHM_DAYS = 60.0
# A customer's own mean interval counts as this many intervals against the shop's rhythm.
SHRINK_INTERVALS = 2.0


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
    returns: ReturnCurve  # days from a first to a second purchase (Kaplan-Meier)

    @property
    def amount_unit(self) -> float:
        """The shop's own scale of money: its typical first order, else its mean order, else 1.

        Amount features are ratios against it, so they do not depend on the currency's unit.
        """
        for value in (self.typical_first_amount, self.mean_order_value):
            if value > 0:
                return value
        return 1.0

    def median_return_days(self, segment: IntArray | None, size: int) -> FloatArray:
        """Days by which half of the returns happen, per customer's segment where it has enough."""
        return self.returns.median_days(segment, size, self.rhythm_days)

    def return_share(self, age: FloatArray, segment: IntArray | None) -> FloatArray:
        """Of the customers who return, the share back within `age` days of their first order."""
        return self.returns.share_back(age, segment)


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
        returns=return_curve(
            cutoff - first_day[has],
            (second_day - first_day)[has],
            returned[has],
            None if segment is None else segment[has],
        ),
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
