"""Learning a shop's risk model from its own past: backtests at earlier cut-offs.

At each cut-off c the features use only purchases before c and the label is the number of
purchases in [c, c + h), with h = min(horizon, as_of - c) so that every window is fully
observed before `as_of`. Customers are sampled so training costs the same for any shop size.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.features import design, snapshot
from domain.risk.history import Purchases, SubscriptionColumns, subset
from domain.risk.model import RiskModel, fit_model, prior_model
from domain.risk.profile import shop_profile
from domain.risk.rhythm import Posterior, posterior
from domain.risk.subscriptions import subscription_snapshot

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

CUTOFFS = 8
# Customers sampled for training; with CUTOFFS this bounds the backtest rows.
MAX_CUSTOMERS = 40_000
# The first cut-off leaves the shop this many days of history.
LEAD_DAYS = 28
# Backtests reach back at most this far before the last full window.
LOOKBACK_DAYS = 365
# A backtest needs this much to stand on; below it the shop gets the prior model.
MIN_ROWS = 500
MIN_EACH_LABEL = 50
SEED = 20240601


@dataclass(frozen=True, slots=True)
class Backtest:
    cutoff: float
    window: float


@dataclass(frozen=True, slots=True)
class BacktestRows:
    raw: FloatArray
    post: Posterior
    window: FloatArray
    count: IntArray
    cutoff: FloatArray  # each row's cut-off: for checking calibration cut-off by cut-off


def plan_backtests(first_day: float, as_of: float, horizon: float) -> list[Backtest]:
    """Up to `CUTOFFS` cut-offs, evenly spaced, each with a window fully observed by `as_of`.

    The shortest window is a third of the horizon (at least 14 days); the earliest cut-off
    leaves `LEAD_DAYS` of history and lies at most `LOOKBACK_DAYS` before the last full
    window.
    """
    shortest = max(14.0, horizon / 3.0)
    latest = np.floor(as_of - min(shortest, horizon))
    earliest = np.ceil(
        max(first_day + LEAD_DAYS, as_of - horizon - max(2 * horizon, LOOKBACK_DAYS))
    )
    if latest < earliest:
        return []
    cutoffs = np.unique(np.round(np.linspace(earliest, latest, CUTOFFS)))
    return [Backtest(float(c), float(min(horizon, as_of - c))) for c in cutoffs]


def sample_customers(purchases: Purchases) -> IntArray:
    """The training sample: customers with a purchase, at most `MAX_CUSTOMERS`, seeded."""
    buyers = np.flatnonzero(np.diff(purchases.start) > 0)
    if buyers.shape[0] <= MAX_CUSTOMERS:
        return buyers.astype(np.int64)
    rng = np.random.default_rng(SEED)
    return np.sort(rng.choice(buyers, MAX_CUSTOMERS, replace=False)).astype(np.int64)


def backtest_rows(
    purchases: Purchases,
    plan: list[Backtest],
    *,
    subscriptions: SubscriptionColumns | None = None,
    segment: IntArray | None = None,
) -> BacktestRows:
    """Feature rows and window counts for every (buyer before the cut-off, backtest)."""
    raws: list[FloatArray] = []
    logits: list[FloatArray] = []
    shapes: list[FloatArray] = []
    rates: list[FloatArray] = []
    dropouts: list[FloatArray] = []
    windows: list[FloatArray] = []
    counts: list[IntArray] = []
    cuts: list[FloatArray] = []
    for test in plan:
        snap = snapshot(purchases, test.cutoff)
        profile = shop_profile(
            purchases,
            test.cutoff,
            counts=snap.purchases,
            first_day=snap.first_day,
            second_day=snap.second_day,
            last_day=snap.last_day,
            segment=segment,
        )
        post = posterior(profile.rhythm, snap.repeat, snap.span, snap.age)
        subs = subscription_snapshot(subscriptions, test.cutoff, purchases.n_customers)
        keep = snap.scorable
        raws.append(design(snap, profile, post, subs, segment)[keep])
        logits.append(post.logit_alive[keep])
        shapes.append(post.shape[keep])
        rates.append(post.rate[keep])
        dropouts.append(post.dropout[keep])
        windows.append(profile.rhythm.window(snap.age[keep], test.window))
        after = purchases.counts_before(test.cutoff + test.window)
        counts.append((after - snap.purchases)[keep])
        cuts.append(np.full(int(keep.sum()), test.cutoff))
    if not raws:
        empty = np.zeros(0)
        return BacktestRows(
            np.zeros((0, 0)),
            Posterior(empty, empty, empty, empty),
            empty,
            np.zeros(0, np.int64),
            empty,
        )
    return BacktestRows(
        raw=np.concatenate(raws),
        post=Posterior(
            np.concatenate(logits),
            np.concatenate(shapes),
            np.concatenate(rates),
            np.concatenate(dropouts),
        ),
        window=np.concatenate(windows),
        count=np.concatenate(counts),
        cutoff=np.concatenate(cuts),
    )


def train(
    purchases: Purchases,
    as_of: float,
    horizon: float,
    *,
    subscriptions: SubscriptionColumns | None = None,
    segment: IntArray | None = None,
) -> RiskModel:
    """The shop's model learnt from backtests before `as_of`, or the prior if too little data."""
    if purchases.day.shape[0] == 0:
        return prior_model()
    plan = plan_backtests(float(purchases.day.min()), as_of, horizon)
    if not plan:
        return prior_model()
    customers = sample_customers(purchases)
    sample = subset(purchases, customers)
    rows = backtest_rows(
        sample,
        plan,
        subscriptions=_subset_events(subscriptions, customers),
        segment=None if segment is None else segment[customers],
    )
    zeros = int((rows.count == 0).sum())
    if rows.count.shape[0] < MIN_ROWS or min(zeros, rows.count.shape[0] - zeros) < MIN_EACH_LABEL:
        return prior_model()
    return fit_model(rows.raw, rows.post, rows.window, rows.count)


def _subset_events(
    events: SubscriptionColumns | None, customers: IntArray
) -> SubscriptionColumns | None:
    """The events of `customers` (sorted), re-indexed like `history.subset`."""
    if events is None:
        return None
    position = np.searchsorted(customers, events.customer)
    clipped = np.minimum(position, max(customers.shape[0] - 1, 0))
    keep = (position < customers.shape[0]) & (customers[clipped] == events.customer)
    return SubscriptionColumns(position[keep], events.day[keep], events.kind[keep])
