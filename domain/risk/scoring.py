"""Scoring a shop's customers: probability, expected purchases and spend, signs and reasons.

`fit_risk_model` learns the shop's model from backtests before `as_of`; `score_customers`
applies it (fitting first when no model is given). Both read only history before `as_of`.
"""

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from domain.errors import InvalidInput
from domain.risk.features import Snapshot, design, expected_interval, snapshot
from domain.risk.history import OrderColumns, Purchases, SubscriptionColumns, purchases_before
from domain.risk.model import RiskModel, predict
from domain.risk.profile import ShopProfile, expected_order_value, shop_profile
from domain.risk.rhythm import posterior
from domain.risk.signs import Evidence, Sign, read_signs, without_basket, without_interval
from domain.risk.subscriptions import SubscriptionSnapshot, subscription_snapshot
from domain.risk.training import train

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

DEFAULT_HORIZON_DAYS = 90
# Segment codes share one int64 sort key with day counts (`returns.SEGMENT_STRIDE`).
MAX_SEGMENT = 1 << 39


class ScoreState(IntEnum):
    SCORED = 0
    NO_ORDERS = 1  # nothing to judge by
    NO_PURCHASES = 2  # orders, but every one cancelled or refunded


@dataclass(frozen=True, slots=True)
class Reason:
    sign: Sign
    strength: float
    # How much this sign adds to P(no purchase): the score minus the score without it.
    contribution: float
    evidence: dict[str, float]
    summary: str


@dataclass(frozen=True, slots=True)
class RiskScores:
    """Per-customer results, indexed like the input's customers.

    Where `state` is not `SCORED` every number is 0 and there are no reasons.
    """

    as_of: float
    horizon_days: int
    model_version: str
    state: NDArray[np.int8]
    p_no_purchase: FloatArray
    expected_purchases: FloatArray
    expected_spend: FloatArray
    strength: FloatArray  # customers by Sign
    contribution: FloatArray  # customers by Sign
    reasons: NDArray[np.int8]  # customers by Sign: sign codes, largest contribution first
    applies: BoolArray  # customers by Sign
    evidence: Evidence

    @property
    def scorable(self) -> BoolArray:
        return np.asarray(self.state == ScoreState.SCORED)

    def reasons_of(self, customer: int) -> list[Reason]:
        """The signs that apply to `customer`, largest contribution first."""
        result: list[Reason] = []
        for code in self.reasons[customer]:
            sign = Sign(int(code))
            if not self.applies[customer, sign]:
                continue
            result.append(
                Reason(
                    sign=sign,
                    strength=float(self.strength[customer, sign]),
                    contribution=float(self.contribution[customer, sign]),
                    evidence=self.evidence.numbers(sign, customer),
                    summary=self.evidence.summary(sign, customer),
                )
            )
        return result


def fit_risk_model(
    orders: OrderColumns,
    as_of: float,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    *,
    subscriptions: SubscriptionColumns | None = None,
    segment: IntArray | None = None,
    purchases: Purchases | None = None,
) -> RiskModel:
    """The shop's model from backtests on history before `as_of` (the prior if too little).

    `purchases`: `purchases_before(orders, as_of)` when the caller needs it too (a million
    customers' take over a second to merge)."""
    _check(orders, horizon_days, segment)
    return train(
        purchases_before(orders, as_of) if purchases is None else purchases,
        as_of,
        float(horizon_days),
        subscriptions=subscriptions,
        segment=segment,
    )


def score_customers(
    orders: OrderColumns,
    as_of: float,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    *,
    subscriptions: SubscriptionColumns | None = None,
    segment: IntArray | None = None,
    model: RiskModel | None = None,
) -> RiskScores:
    """Risk of every customer as of `as_of` (local days) over the next `horizon_days`.

    `segment` optionally codes each customer's first product and mall (-1 unknown) for the
    first-time buyers' baseline. Deterministic: the same data give the same scores.
    """
    _check(orders, horizon_days, segment)
    purchases = purchases_before(orders, as_of)
    if model is None:
        model = train(
            purchases, as_of, float(horizon_days), subscriptions=subscriptions, segment=segment
        )
    snap = snapshot(purchases, as_of)
    profile = shop_profile(
        purchases,
        as_of,
        counts=snap.purchases,
        first_day=snap.first_day,
        second_day=snap.second_day,
        last_day=snap.last_day,
        segment=segment,
    )
    return _score(purchases, snap, as_of, horizon_days, profile, model, subscriptions, segment)


def score_with_profile(
    purchases: Purchases,
    as_of: float,
    horizon_days: int,
    *,
    profile: ShopProfile,
    model: RiskModel,
    subscriptions: SubscriptionColumns | None = None,
    segment: IntArray | None = None,
) -> RiskScores:
    """`score_customers(…, model=model)` of these purchases, against the shop's `profile`.

    For scoring a slice of a shop (a rescoring job's few customers, or a full run in slices):
    `score_customers` would derive the profile from the slice itself. `purchases` are
    `purchases_before(orders, as_of)` or a subset of them; `segment` codes are the profile's.
    """
    if segment is not None and segment.shape[0] != purchases.n_customers:
        raise InvalidInput("segment needs one code per customer", "segment")
    snap = snapshot(purchases, as_of)
    return _score(purchases, snap, as_of, horizon_days, profile, model, subscriptions, segment)


def _score(
    purchases: Purchases,
    snap: Snapshot,
    as_of: float,
    horizon_days: int,
    profile: ShopProfile,
    model: RiskModel,
    subscriptions: SubscriptionColumns | None,
    segment: IntArray | None,
) -> RiskScores:
    n_customers = purchases.n_customers
    subs = subscription_snapshot(subscriptions, as_of, n_customers)
    horizon = float(horizon_days)

    def p_none(view: Snapshot, sub_view: SubscriptionSnapshot) -> tuple[FloatArray, FloatArray]:
        post = posterior(profile.rhythm, view.repeat, view.span, view.age)
        raw = design(view, profile, post, sub_view, segment)
        result = predict(model, raw, post, profile.rhythm.window(view.age, horizon))
        return result.p_no_purchase, result.expected_purchases

    probability, purchases_expected = p_none(snap, subs)
    usual = expected_interval(snap, profile, segment)
    no_subs = subscription_snapshot(None, as_of, n_customers)
    contribution = np.stack(
        (
            probability - p_none(without_interval(snap, usual), subs)[0],
            probability - p_none(without_basket(snap, profile), subs)[0],
            probability - p_none(snap, no_subs)[0],
        ),
        axis=1,
    )
    signs = read_signs(snap, profile, subs, segment)
    scored = snap.scorable
    contribution = np.where(signs.applies, contribution, 0.0)
    spend = purchases_expected * expected_order_value(profile, snap.total_amount, snap.purchases)
    return RiskScores(
        as_of=float(as_of),
        horizon_days=horizon_days,
        model_version=model.version,
        state=_states(scored, purchases.orders_seen),
        p_no_purchase=np.where(scored, probability, 0.0),
        expected_purchases=np.where(scored, purchases_expected, 0.0),
        expected_spend=np.where(scored, spend, 0.0),
        strength=signs.strength,
        contribution=contribution,
        # Stable on the negated contribution: ties keep the fixed order of `Sign`.
        reasons=np.argsort(-contribution, axis=1, kind="stable").astype(np.int8),
        applies=signs.applies,
        evidence=signs.evidence,
    )


def _states(scored: BoolArray, orders_seen: IntArray) -> NDArray[np.int8]:
    state = np.full(scored.shape[0], ScoreState.NO_ORDERS, dtype=np.int8)
    state[orders_seen > 0] = ScoreState.NO_PURCHASES
    state[scored] = ScoreState.SCORED
    return state


def _check(orders: OrderColumns, horizon_days: int, segment: IntArray | None) -> None:
    if horizon_days < 1:
        raise InvalidInput("horizon_days must be at least 1", "horizon_days")
    if segment is not None and segment.shape[0] != orders.n_customers:
        raise InvalidInput("segment needs one code per customer", "segment")
    if segment is not None and segment.shape[0] and int(segment.max()) >= MAX_SEGMENT:
        raise InvalidInput(f"segment codes must be below {MAX_SEGMENT}", "segment")
