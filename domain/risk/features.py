"""Per-customer purchase history as of a cut-off, and the model's feature columns.

All set-based over the sorted purchase occasions of `history.Purchases`: a cut-off costs a
few O(n) passes, whatever the number of customers.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.history import Purchases
from domain.risk.profile import ShopProfile
from domain.risk.rhythm import Posterior
from domain.risk.subscriptions import SubscriptionSnapshot

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Most recent orders compared with the earlier ones for the basket trend.
RECENT_ORDERS = 3
# Amounts are compared as ratios with this share of the shop's typical amount added to both
# sides, so that an empty basket stays finite and the features do not depend on the unit
# (yen, cents or dollars give the same features).
AMOUNT_FLOOR = 0.03
# Amounts in units of the shop's typical amount are rounded to this many steps per unit:
# far finer than any difference that matters, and coarse enough that rounding errors of
# the money unit (cents summed as floats vs whole yen) cannot flip a feature's value.
AMOUNT_STEPS = 4096.0

FEATURES: tuple[str, ...] = (
    "repeat",
    "age",
    "gap",
    "interval_ratio",
    "first_timer",
    "return_share",
    "first_amount",
    "first_quantity",
    "first_amount_squared",
    "first_quantity_squared",
    "mean_amount",
    "amount_trend",
    "quantity_trend",
    "alive",
    "rate",
    "subscription_pressure",
    "subscription_live",
    "subscription_cancelled",
    "repeat_squared",
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Each customer's purchase occasions before `cutoff` (zeros where there are none)."""

    cutoff: float
    purchases: IntArray
    first_day: FloatArray
    last_day: FloatArray
    first_amount: FloatArray
    first_quantity: FloatArray
    total_amount: FloatArray
    recent_amount: FloatArray  # mean over the last `recent` orders
    earlier_amount: FloatArray  # mean over the orders before those
    recent_quantity: FloatArray
    earlier_quantity: FloatArray
    recent: IntArray
    second_day: FloatArray  # day of the second purchase; equals first_day if none

    @property
    def scorable(self) -> BoolArray:
        return self.purchases > 0

    @property
    def repeat(self) -> FloatArray:
        """Repeat purchases x (purchases - 1, never below 0)."""
        return np.maximum(self.purchases - 1, 0).astype(np.float64)

    @property
    def age(self) -> FloatArray:
        """Days from the first purchase to the cut-off (T)."""
        return np.where(self.scorable, self.cutoff - self.first_day, 0.0)

    @property
    def span(self) -> FloatArray:
        """Days from the first to the last purchase (t_x)."""
        return self.last_day - self.first_day

    @property
    def gap(self) -> FloatArray:
        """Days since the last purchase."""
        return np.where(self.scorable, self.cutoff - self.last_day, 0.0)


def snapshot(purchases: Purchases, cutoff: float) -> Snapshot:
    """Every customer's history from purchase occasions strictly before `cutoff`."""
    count = purchases.counts_before(cutoff)
    start = purchases.start[:-1]
    end = start + count
    has = count > 0
    first = np.minimum(start, max(purchases.day.shape[0] - 1, 0))
    last = np.maximum(end - 1, 0)
    second = np.where(count > 1, start + 1, first)
    day = purchases.day.astype(np.float64) if purchases.day.shape[0] else np.zeros(1)
    amount = purchases.amount if purchases.amount.shape[0] else np.zeros(1)
    quantity = purchases.quantity if purchases.quantity.shape[0] else np.zeros(1)
    recent = np.where(count > 1, np.clip(count // 2, 1, RECENT_ORDERS), count)
    split = end - recent
    earlier = np.maximum(count - recent, 1)
    cum_a, cum_q = purchases.cum_amount, purchases.cum_quantity
    safe_recent = np.maximum(recent, 1)
    return Snapshot(
        cutoff=float(cutoff),
        purchases=count,
        first_day=np.where(has, day[first], 0.0),
        last_day=np.where(has, day[last], 0.0),
        first_amount=np.where(has, amount[first], 0.0),
        first_quantity=np.where(has, quantity[first], 0.0),
        total_amount=cum_a[end] - cum_a[start],
        recent_amount=(cum_a[end] - cum_a[split]) / safe_recent,
        earlier_amount=np.where(count > 1, (cum_a[split] - cum_a[start]) / earlier, 0.0),
        recent_quantity=(cum_q[end] - cum_q[split]) / safe_recent,
        earlier_quantity=np.where(count > 1, (cum_q[split] - cum_q[start]) / earlier, 0.0),
        recent=recent,
        second_day=np.where(has, day[second], 0.0),
    )


def expected_interval(snap: Snapshot, profile: ShopProfile, segment: IntArray | None) -> FloatArray:
    """The customer's usual days between orders, shrunk towards the shop's rhythm.

    A first-time buyer's "usual" is the median time to a second purchase among the shop's
    returning customers (of the same first product and mall, where there are enough).
    """
    x = snap.repeat
    own = (snap.span + profile.shrink_intervals * profile.rhythm_days) / (
        x + profile.shrink_intervals
    )
    return np.where(x > 0, own, profile.median_return_days(segment, snap.purchases.shape[0]))


def design(
    snap: Snapshot,
    profile: ShopProfile,
    post: Posterior,
    subs: SubscriptionSnapshot,
    segment: IntArray | None,
) -> FloatArray:
    """The raw feature matrix (customers by `FEATURES`); finite for every row."""
    x = snap.repeat
    first_timer = (x == 0).astype(np.float64)
    gap = snap.gap
    usual = expected_interval(snap, profile, segment)
    share = profile.return_share(snap.age, segment) * first_timer
    mean_amount = snap.total_amount / np.maximum(snap.purchases, 1)
    repeaters = x > 0
    unit = profile.amount_unit
    first_amount = _amount_ratio(snap.first_amount, profile.typical_first_amount, unit)
    first_quantity = _relative(snap.first_quantity, profile.typical_first_quantity)
    columns = (
        np.log1p(x),
        np.log1p(snap.age),
        np.log1p(gap),
        np.log((gap + 1.0) / (usual + 1.0)),
        first_timer,
        share,
        first_amount,
        first_quantity,
        # Returns rise with the first basket and then level off (or fall): a curve, not a line.
        first_amount**2,
        first_quantity**2,
        _amount_ratio(mean_amount, profile.typical_first_amount, unit),
        np.where(repeaters, _amount_ratio(snap.recent_amount, snap.earlier_amount, unit), 0.0),
        np.where(repeaters, _relative(snap.recent_quantity, snap.earlier_quantity), 0.0),
        np.clip(post.logit_alive, -20.0, 20.0),
        np.log(post.shape / post.rate),
        np.log1p(subs.pressure),
        subs.live,
        subs.cancelled.astype(np.float64),
        # The heaviest buyers' rates regress more than a line in log x allows.
        np.log1p(x) ** 2,
    )
    matrix = np.stack(columns, axis=1)
    return np.where(np.isfinite(matrix), matrix, 0.0)


def _amount_ratio(
    value: FloatArray | float, reference: FloatArray | float, unit: float
) -> FloatArray:
    """log((value + f·unit) / (reference + f·unit)), f = `AMOUNT_FLOOR`: free of the money unit.

    `unit` is the shop's typical amount (positive), so multiplying every amount of the shop by
    the same factor leaves the result unchanged.
    """
    return np.asarray(
        np.log(_in_units(value, unit) + AMOUNT_FLOOR)
        - np.log(_in_units(reference, unit) + AMOUNT_FLOOR),
        dtype=np.float64,
    )


def _in_units(value: FloatArray | float, unit: float) -> FloatArray:
    return np.asarray(
        np.round(np.maximum(value, 0.0) / unit * AMOUNT_STEPS) / AMOUNT_STEPS, dtype=np.float64
    )


def _relative(value: FloatArray | float, reference: FloatArray | float) -> FloatArray:
    """log((value + 1) / (reference + 1)) for non-negative counts (item quantities)."""
    return np.asarray(
        np.log1p(np.maximum(value, 0.0)) - np.log1p(np.maximum(reference, 0.0)),
        dtype=np.float64,
    )
