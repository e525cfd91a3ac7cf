"""The model against processes whose truth is known."""

import numpy as np
import pytest

from domain.risk.history import order_columns, purchases_before
from domain.risk.rhythm import ShopRhythm, fit_rhythm
from domain.risk.scoring import fit_risk_model, score_customers
from domain.risk.signs import Sign
from tests.domain.risk.simulate import (
    auc,
    first_basket_shop,
    mbg_shop,
    poisson_shop,
    subscription_shop,
)


@pytest.mark.parametrize("seed", [21, 22])
def test_probabilities_match_observed_frequencies(seed: int) -> None:
    shop = poisson_shop(6000, seed=seed)

    scores = score_customers(shop.orders, shop.as_of, shop.horizon)

    scored = scores.scorable
    p = scores.p_no_purchase[scored]
    silent = (shop.future[scored] == 0).astype(np.float64)
    assert abs(p.mean() - silent.mean()) < 0.015
    edges = np.quantile(p, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    for b in range(10):
        inside = bins == b
        # 600 customers a bin: three standard errors at p = 0.5 is about 0.06.
        assert abs(p[inside].mean() - silent[inside].mean()) < 0.06
    assert auc(p, silent.astype(bool)) > 0.85
    expected = scores.expected_purchases[scored]
    assert expected.mean() == pytest.approx(shop.future[scored].mean(), rel=0.1)
    assert np.corrcoef(expected, shop.future[scored])[0, 1] > 0.6


def test_subscription_events_carry_visible_signal() -> None:
    shop = subscription_shop(3000, seed=31)

    with_events = score_customers(shop.orders, shop.as_of, shop.horizon, subscriptions=shop.events)
    without = score_customers(shop.orders, shop.as_of, shop.horizon)

    scored = with_events.scorable
    silent = shop.future[scored] == 0
    assert (
        auc(with_events.p_no_purchase[scored], silent)
        > auc(without.p_no_purchase[scored], silent) + 0.03
    )
    cancelled = shop.cancelled & scored
    assert with_events.p_no_purchase[cancelled].mean() > 0.9
    assert with_events.strength[cancelled, Sign.SUBSCRIPTION].min() > 0.5
    top = [with_events.reasons_of(int(c))[0].sign for c in np.flatnonzero(cancelled)[:50]]
    assert top.count(Sign.SUBSCRIPTION) > 25


def test_the_rhythm_fit_recovers_mbg_nbd_parameters() -> None:
    truth = ShopRhythm(r=0.8, alpha=40.0, a=1.0, b=3.0)
    rng = np.random.default_rng(41)
    size, span = 20000, 500.0
    rate = rng.gamma(truth.r, 1.0 / truth.alpha, size)
    leave = rng.beta(truth.a, truth.b, size)
    age = rng.uniform(100.0, span, size)
    # Walk purchase by purchase: the customer may leave at the first purchase and after each.
    t = np.zeros(size)
    last = np.zeros(size)
    repeats = np.zeros(size)
    alive = rng.random(size) >= leave
    while alive.any():
        t = t + rng.exponential(1.0, size) / rate
        bought = alive & (t < age)
        repeats += bought
        last = np.where(bought, t, last)
        alive = bought & (rng.random(size) >= leave)

    fitted = fit_rhythm(repeats, last, age)

    assert fitted.r == pytest.approx(truth.r, rel=0.15)
    assert fitted.alpha == pytest.approx(truth.alpha, rel=0.2)
    assert fitted.a == pytest.approx(truth.a, rel=0.25)
    assert fitted.b == pytest.approx(truth.b, rel=0.3)


def test_a_shop_too_young_to_backtest_falls_back_to_the_prior() -> None:
    shop = poisson_shop(500, seed=51)
    recent = shop.orders.day < 20

    model = fit_risk_model(
        order_columns(
            shop.orders.n_customers,
            shop.orders.customer[recent],
            shop.orders.day[recent],
            shop.orders.amount[recent],
            shop.orders.quantity[recent],
        ),
        as_of=25.0,
    )
    fitted = fit_risk_model(shop.orders, shop.as_of, shop.horizon)

    assert model.trained_rows == 0
    assert not model.alive_weights.any()
    assert fitted.trained_rows > 1000


def test_first_buyers_use_their_segments_returns_where_it_has_enough() -> None:
    rng = np.random.default_rng(61)
    size = 400
    segment = (np.arange(size) % 2).astype(np.int64)
    first = rng.uniform(0.0, 100.0, size)
    # Segment 0 returns after 10 days, segment 1 after 60; the last 40 customers never return.
    returns = np.where(segment == 0, 10.0, 60.0)
    back = np.arange(size) < size - 40
    customer = np.concatenate((np.arange(size), np.flatnonzero(back)))
    day = np.concatenate((first, (first + returns)[back]))
    orders = order_columns(
        size, customer, day, np.full(day.shape[0], 1000.0), np.ones(day.shape[0])
    )
    as_of = 200.0

    with_segments = score_customers(orders, as_of, 90, segment=segment)
    shop_wide = score_customers(orders, as_of, 90)

    quiet = np.flatnonzero(~back)
    usual = with_segments.evidence.usual_interval[quiet]
    assert set(usual[segment[quiet] == 0]) == {10.0}
    assert set(usual[segment[quiet] == 1]) == {60.0}
    assert len(set(shop_wide.evidence.usual_interval[quiet])) == 1


@pytest.mark.parametrize("seed", [81, 82])
def test_frequent_buyers_counts_over_a_long_window_are_not_inflated(seed: int) -> None:
    shop = mbg_shop(8000, seed=seed)

    scores = score_customers(shop.orders, shop.as_of, shop.horizon)

    repeats = purchases_before(shop.orders, shop.as_of).counts_before(shop.as_of) - 1
    scored = scores.scorable
    expected, actual = scores.expected_purchases, shop.future
    assert expected[scored].mean() == pytest.approx(actual[scored].mean(), rel=0.05)
    for low, high in ((1, 2), (3, 5), (6, 10_000)):
        group = scored & (repeats >= low) & (repeats <= high)
        ratio = expected[group].mean() / actual[group].mean()
        # Sampling noise of a few hundred customers is about ±5%.
        assert 0.88 < ratio < 1.08


@pytest.mark.parametrize("seed", [91, 92])
def test_a_first_basket_that_matters_non_monotonically_ranks_first_time_buyers(
    seed: int,
) -> None:
    shop = first_basket_shop(6000, seed=seed)
    orders = shop.orders
    flat = order_columns(
        orders.n_customers,
        orders.customer,
        orders.day,
        np.full(orders.day.shape[0], 3000.0),
        orders.quantity,
    )

    scores = score_customers(orders, shop.as_of, shop.horizon)
    blind = score_customers(flat, shop.as_of, shop.horizon)

    first_timers = scores.scorable & (scores.evidence.orders == 1)
    silent = shop.future[first_timers] == 0
    assert (
        auc(scores.p_no_purchase[first_timers], silent)
        > auc(blind.p_no_purchase[first_timers], silent) + 0.012
    )
