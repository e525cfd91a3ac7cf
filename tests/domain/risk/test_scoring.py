import dataclasses

import numpy as np
import pytest

from domain.errors import InvalidInput
from domain.risk.history import (
    OrderColumns,
    OrderState,
    SubscriptionColumns,
    SubscriptionSign,
    order_columns,
)
from domain.risk.scoring import RiskScores, ScoreState, score_customers
from domain.risk.signs import Sign
from tests.domain.risk.simulate import first_basket_shop, poisson_shop


def _arrays(scores: RiskScores) -> list[np.ndarray]:
    return [
        scores.state,
        scores.p_no_purchase,
        scores.expected_purchases,
        scores.expected_spend,
        scores.strength,
        scores.contribution,
        scores.reasons,
        *(
            value
            for value in dataclasses.asdict(scores.evidence).values()
            if isinstance(value, np.ndarray)
        ),
    ]


def _with_orders(
    orders: OrderColumns,
    customer: list[int],
    day: list[float],
    amount: list[float],
    quantity: list[float],
    state: list[int] | None = None,
    n_customers: int | None = None,
) -> OrderColumns:
    return order_columns(
        n_customers if n_customers is not None else orders.n_customers,
        np.concatenate((orders.customer, customer)),
        np.concatenate((orders.day, day)),
        np.concatenate((orders.amount, amount)),
        np.concatenate((orders.quantity, quantity)),
        np.concatenate((orders.state, state if state is not None else [0] * len(customer))),
    )


def test_same_data_gives_identical_scores() -> None:
    shop = poisson_shop(3000, seed=11)

    first = score_customers(shop.orders, shop.as_of, shop.horizon)
    second = score_customers(shop.orders, shop.as_of, shop.horizon)

    assert first.model_version == second.model_version
    for a, b in zip(_arrays(first), _arrays(second), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("factor", [100.0, 0.01])
def test_the_unit_of_money_changes_no_score(factor: float) -> None:
    # The first basket carries the signal in this shop, so the amount features weigh in.
    shop = first_basket_shop(3000, seed=5)
    scaled = dataclasses.replace(shop.orders, amount=shop.orders.amount * factor)

    plain = score_customers(shop.orders, shop.as_of, shop.horizon)
    other = score_customers(scaled, shop.as_of, shop.horizon)

    assert plain.scorable.sum() > 2000
    np.testing.assert_allclose(other.p_no_purchase, plain.p_no_purchase, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        other.expected_purchases, plain.expected_purchases, rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(other.strength, plain.strength, rtol=0, atol=1e-9)
    np.testing.assert_allclose(other.contribution, plain.contribution, rtol=0, atol=1e-9)
    # Spend is money: it moves with the unit, and only with it.
    np.testing.assert_allclose(
        other.expected_spend, plain.expected_spend * factor, rtol=1e-9, atol=1e-9
    )


def test_orders_and_events_after_as_of_change_nothing() -> None:
    shop = poisson_shop(3000, seed=12)
    size = shop.orders.n_customers
    events = SubscriptionColumns(
        np.array([0, 1], dtype=np.int64),
        np.array([100.0, 200.0]),
        np.array([SubscriptionSign.STARTED, SubscriptionSign.SKIPPED], dtype=np.int8),
    )
    before = score_customers(shop.orders, shop.as_of, shop.horizon, subscriptions=events)
    # Later orders of known customers, a customer who only buys later, and later events.
    future = _with_orders(
        shop.orders,
        customer=[0, 1, 2, size],
        day=[shop.as_of, shop.as_of + 0.5, shop.as_of + 30, shop.as_of + 1],
        amount=[1000, 2000, 3000, 4000],
        quantity=[1, 1, 1, 1],
        n_customers=size + 1,
    )
    later_events = SubscriptionColumns(
        np.array([0, 1, 3], dtype=np.int64),
        np.array([100.0, 200.0, shop.as_of + 2]),
        np.array(
            [SubscriptionSign.STARTED, SubscriptionSign.SKIPPED, SubscriptionSign.CANCELLED],
            dtype=np.int8,
        ),
    )

    after = score_customers(future, shop.as_of, shop.horizon, subscriptions=later_events)

    assert after.model_version == before.model_version
    for a, b in zip(_arrays(before), _arrays(after), strict=True):
        assert np.array_equal(a, b[:size])
    assert after.state[size] == ScoreState.NO_ORDERS


def test_edge_cases_score_sensibly_or_say_why_not() -> None:
    shop = poisson_shop(2000, seed=13)
    n = shop.orders.n_customers
    t = shop.as_of - 40.0
    none, one, same_day, zero, cancelled, refunded, partly, negative = range(n, n + 8)
    orders = _with_orders(
        shop.orders,
        customer=[
            one,
            same_day,
            same_day,
            zero,
            zero,
            cancelled,
            refunded,
            partly,
            partly,
            negative,
        ],
        day=[t, t + 0.1, t + 0.6, t - 30, t, t, t, t - 60, t, t],
        amount=[5000, 1000, 2500, 0, 0, 3000, 3000, 4000, 4000, -500],
        quantity=[1, 1, 2, 1, 1, 1, 1, 1, 1, 1],
        state=[
            OrderState.PURCHASE,
            OrderState.PURCHASE,
            OrderState.PURCHASE,
            OrderState.PURCHASE,
            OrderState.PURCHASE,
            OrderState.CANCELLED,
            OrderState.REFUNDED,
            OrderState.REFUNDED,
            OrderState.PURCHASE,
            OrderState.PURCHASE,
        ],
        n_customers=n + 8,
    )

    scores = score_customers(orders, shop.as_of, shop.horizon)

    for array in _arrays(scores):
        assert np.isfinite(array).all()
    assert scores.state[none] == ScoreState.NO_ORDERS
    assert scores.state[cancelled] == ScoreState.NO_PURCHASES
    assert scores.state[refunded] == ScoreState.NO_PURCHASES
    for customer in (none, cancelled, refunded):
        assert scores.p_no_purchase[customer] == 0.0
        assert scores.reasons_of(customer) == []
    for customer in (one, same_day, zero, partly, negative):
        assert scores.state[customer] == ScoreState.SCORED
        assert 0.0 < scores.p_no_purchase[customer] < 1.0
        assert scores.expected_purchases[customer] > 0.0
        assert scores.expected_spend[customer] >= 0.0
    # Same-day orders are one purchase occasion with the basket summed.
    assert scores.evidence.orders[same_day] == 1
    assert scores.evidence.first_amount[same_day] == 3500
    assert scores.evidence.first_quantity[same_day] == 3
    assert scores.evidence.days_since_last[same_day] == 40
    # A refunded order is no purchase; a negative net amount counts as zero.
    assert scores.evidence.orders[partly] == 1
    assert scores.evidence.first_amount[negative] == 0
    assert scores.evidence.orders[zero] == 2


def test_a_tiny_shop_gets_the_prior_and_finite_scores() -> None:
    orders = order_columns(3, [0, 0, 1], [10.0, 40.0, 20.0], [1000, 1200, 800], [1, 1, 1])

    scores = score_customers(orders, 100.0, 90)

    assert list(scores.state) == [ScoreState.SCORED, ScoreState.SCORED, ScoreState.NO_ORDERS]
    assert np.isfinite(scores.p_no_purchase).all()
    assert 0.0 < scores.p_no_purchase[0] < 1.0
    assert scores.model_version.startswith("zinb-mbg-3:")


def _rhythm_shop() -> tuple[OrderColumns, int, float]:
    """Customers ordering every 31 days until some stop; customer 0 went quiet 68 days ago."""
    rng = np.random.default_rng(5)
    size = 300
    start = rng.integers(0, 120, size).astype(np.float64)
    start[0] = 200.0
    as_of = start[0] + 5 * 31 + 68
    stop = np.where(rng.random(size) < 0.5, rng.uniform(start + 40, as_of + 90), as_of + 90)
    stop[0] = start[0] + 5 * 31 + 1
    due = start[:, None] + 31.0 * np.arange(20)[None, :]
    keep = due < stop[:, None]
    customer = np.broadcast_to(np.arange(size)[:, None], due.shape)[keep]
    day = due[keep]
    amount = np.full(day.shape[0], 4000.0)
    quantity = np.full(day.shape[0], 2.0)
    # Customer 0 (its six orders come first): the last three baskets are half the earlier.
    amount[3:6] = 2000.0
    quantity[3:6] = 1.0
    return order_columns(size, customer, day, amount, quantity), 0, float(as_of)


def test_reasons_carry_the_evidence_in_numbers_ordered_by_contribution() -> None:
    orders, customer, as_of = _rhythm_shop()

    scores = score_customers(orders, as_of, 90)
    reasons = scores.reasons_of(customer)

    by_sign = {reason.sign: reason for reason in reasons}
    assert set(by_sign) == {Sign.INTERVAL, Sign.BASKET}
    interval = by_sign[Sign.INTERVAL]
    assert interval.evidence == {"days_since_last": 68.0, "usual_interval": 31.0, "orders": 6.0}
    assert interval.summary == "68 days since last order; usually 31"
    assert interval.strength == pytest.approx(1 - np.exp(-(68 / 31 - 1)))
    assert interval.contribution > 0
    basket = by_sign[Sign.BASKET]
    assert basket.evidence == {
        "recent_amount": 2000.0,
        "earlier_amount": 4000.0,
        "recent_quantity": 1.0,
        "earlier_quantity": 2.0,
        "recent_orders": 3.0,
    }
    assert basket.strength == pytest.approx(0.5)
    contributions = [reason.contribution for reason in reasons]
    assert contributions == sorted(contributions, reverse=True)
    assert contributions == [scores.contribution[customer, reason.sign] for reason in reasons]


def test_a_first_time_buyer_is_measured_against_the_shops_returns() -> None:
    orders, _, as_of = _rhythm_shop()
    newcomer = orders.n_customers
    orders = _with_orders(orders, [newcomer], [as_of - 45], [4000], [2], n_customers=newcomer + 1)

    scores = score_customers(orders, as_of, 90)
    interval = next(r for r in scores.reasons_of(newcomer) if r.sign is Sign.INTERVAL)

    # Every returning customer came back after 31 days, i.e. within 45.
    assert interval.evidence["returned_share"] == 1.0
    assert interval.contribution > 0
    assert interval.evidence["usual_interval"] == 31.0
    assert interval.summary.startswith("45 days since first order; 100% of returning")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer": [0, 5]}, "customer"),
        ({"day": [1.0, float("nan")]}, "day"),
        ({"amount": [1.0]}, "amount"),
        ({"quantity": [1.0, -1.0]}, "quantity"),
        ({"state": [0, 9]}, "state"),
    ],
)
def test_bad_columns_are_rejected_with_the_column_named(
    change: dict[str, list[float]], field: str
) -> None:
    columns: dict[str, list[float]] = {
        "customer": [0, 1],
        "day": [1.0, 2.0],
        "amount": [1.0, 2.0],
        "quantity": [1.0, 1.0],
        "state": [0, 0],
    }
    columns.update(change)

    with pytest.raises(InvalidInput) as error:
        order_columns(
            2,
            [int(c) for c in columns["customer"]],
            columns["day"],
            columns["amount"],
            columns["quantity"],
            [int(s) for s in columns["state"]],
        )

    assert error.value.field == (field,)


def test_a_horizon_below_one_day_is_rejected() -> None:
    orders = order_columns(1, [0], [1.0], [1.0], [1.0])

    with pytest.raises(InvalidInput) as error:
        score_customers(orders, 10.0, 0)

    assert error.value.field == ("horizon_days",)


def test_segment_codes_too_large_for_the_sort_key_are_rejected() -> None:
    orders = order_columns(2, [0, 1], [1.0, 2.0], [1.0, 1.0], [1.0, 1.0])

    with pytest.raises(InvalidInput) as error:
        score_customers(orders, 10.0, 90, segment=np.array([0, 1 << 40], dtype=np.int64))

    assert error.value.field == ("segment",)
