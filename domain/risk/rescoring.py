"""Scoring any slice of a shop's customers against the shop's profile, as a full run would.

`score_customers` derives the shop's profile (rhythm, baselines) from the customers it is
given: for the handful of customers of one rescoring job that would be their own profile, not
the shop's, and a full run could not score in slices. `score_with_profile` takes the shop's
profile instead; every other step is `score_customers`' own, and a test holds the two equal
customer by customer. (Once `score_customers` accepts a profile, this module goes.)
"""

import numpy as np
from numpy.typing import NDArray

from domain.risk.features import Snapshot, design, expected_interval, snapshot
from domain.risk.history import Purchases, SubscriptionColumns
from domain.risk.model import RiskModel, predict
from domain.risk.profile import ShopProfile, expected_order_value
from domain.risk.rhythm import posterior
from domain.risk.scoring import RiskScores, ScoreState
from domain.risk.signs import read_signs, without_basket, without_interval
from domain.risk.subscriptions import SubscriptionSnapshot, subscription_snapshot

FloatArray = NDArray[np.float64]


def score_with_profile(
    purchases: Purchases,
    as_of: float,
    horizon_days: int,
    *,
    profile: ShopProfile,
    model: RiskModel,
    subscriptions: SubscriptionColumns | None = None,
) -> RiskScores:
    """`score_customers(…, model=model)` of these purchases with the shop's `profile`.

    `purchases` are `purchases_before(orders, as_of)` (or a `subset` of them).
    """
    snap = snapshot(purchases, as_of)
    subs = subscription_snapshot(subscriptions, as_of, purchases.n_customers)
    horizon = float(horizon_days)

    def p_none(view: Snapshot, sub_view: SubscriptionSnapshot) -> tuple[FloatArray, FloatArray]:
        post = posterior(profile.rhythm, view.repeat, view.span, view.age)
        raw = design(view, profile, post, sub_view, None)
        result = predict(model, raw, post, profile.rhythm.window(view.age, horizon))
        return result.p_no_purchase, result.expected_purchases

    probability, purchases_expected = p_none(snap, subs)
    usual = expected_interval(snap, profile, None)
    no_subs = subscription_snapshot(None, as_of, purchases.n_customers)
    contribution = np.stack(
        (
            probability - p_none(without_interval(snap, usual), subs)[0],
            probability - p_none(without_basket(snap, profile), subs)[0],
            probability - p_none(snap, no_subs)[0],
        ),
        axis=1,
    )
    signs = read_signs(snap, profile, subs, None)
    scored = snap.scorable
    contribution = np.where(signs.applies, contribution, 0.0)
    spend = purchases_expected * expected_order_value(profile, snap.total_amount, snap.purchases)
    state = np.full(scored.shape[0], ScoreState.NO_ORDERS, dtype=np.int8)
    state[purchases.orders_seen > 0] = ScoreState.NO_PURCHASES
    state[scored] = ScoreState.SCORED
    return RiskScores(
        as_of=float(as_of),
        horizon_days=horizon_days,
        model_version=model.version,
        state=state,
        p_no_purchase=np.where(scored, probability, 0.0),
        expected_purchases=np.where(scored, purchases_expected, 0.0),
        expected_spend=np.where(scored, spend, 0.0),
        strength=signs.strength,
        contribution=contribution,
        reasons=np.argsort(-contribution, axis=1, kind="stable").astype(np.int8),
        applies=signs.applies,
        evidence=signs.evidence,
    )
