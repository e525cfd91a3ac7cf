import numpy as np
import pytest

from domain.risk.history import SubscriptionColumns, purchases_before, subset
from domain.risk.scoring import RiskScores, fit_risk_model, score_customers, score_with_profile
from domain.risk.state import profile_as_of
from tests.domain.risk.simulate import poisson_shop, subscription_shop


def _assert_same(full: RiskScores, part: RiskScores, rows: np.ndarray) -> None:
    assert part.model_version == full.model_version
    for name in ("state", "p_no_purchase", "expected_purchases", "expected_spend"):
        np.testing.assert_allclose(getattr(part, name), getattr(full, name)[rows], rtol=1e-12)
    for name in ("strength", "contribution", "reasons", "applies"):
        np.testing.assert_allclose(getattr(part, name), getattr(full, name)[rows], rtol=1e-12)
    for local, row in enumerate(rows):
        assert part.reasons_of(local) == full.reasons_of(int(row))


def _events_of(events: SubscriptionColumns, customers: np.ndarray) -> SubscriptionColumns:
    position = np.searchsorted(customers, events.customer)
    clipped = np.minimum(position, customers.shape[0] - 1)
    keep = (position < customers.shape[0]) & (customers[clipped] == events.customer)
    return SubscriptionColumns(position[keep], events.day[keep], events.kind[keep])


def test_the_whole_shop_scores_as_score_customers_does() -> None:
    shop = poisson_shop(3000, seed=21)
    model = fit_risk_model(shop.orders, shop.as_of, shop.horizon)
    full = score_customers(shop.orders, shop.as_of, shop.horizon, model=model)
    purchases = purchases_before(shop.orders, shop.as_of)

    mine = score_with_profile(
        purchases,
        shop.as_of,
        shop.horizon,
        profile=profile_as_of(purchases, shop.as_of),
        model=model,
    )

    _assert_same(full, mine, np.arange(shop.orders.n_customers))


@pytest.mark.parametrize("customers", [[0], [5, 17, 2999], list(range(1000, 1700))])
def test_any_slice_of_customers_scores_as_in_the_whole_shop(customers: list[int]) -> None:
    shop = subscription_shop(3000, seed=22)
    model = fit_risk_model(shop.orders, shop.as_of, shop.horizon, subscriptions=shop.events)
    full = score_customers(
        shop.orders, shop.as_of, shop.horizon, subscriptions=shop.events, model=model
    )
    purchases = purchases_before(shop.orders, shop.as_of)
    rows = np.array(customers, dtype=np.int64)

    part = score_with_profile(
        subset(purchases, rows),
        shop.as_of,
        shop.horizon,
        profile=profile_as_of(purchases, shop.as_of),
        model=model,
        subscriptions=_events_of(shop.events, rows),
    )

    _assert_same(full, part, rows)
