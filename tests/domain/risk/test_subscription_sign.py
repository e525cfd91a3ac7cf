import numpy as np

from domain.risk.history import SubscriptionColumns, SubscriptionSign
from domain.risk.subscriptions import subscription_snapshot


def _events(*rows: tuple[int, float, SubscriptionSign]) -> SubscriptionColumns:
    return SubscriptionColumns(
        np.array([customer for customer, _, _ in rows], dtype=np.int64),
        np.array([day for _, day, _ in rows], dtype=np.float64),
        np.array([kind for _, _, kind in rows], dtype=np.int8),
    )


def test_an_unskip_takes_back_the_skip_it_reinstates() -> None:
    events = _events(
        (0, 0.0, SubscriptionSign.STARTED),
        (0, 50.0, SubscriptionSign.SKIPPED),
        (1, 0.0, SubscriptionSign.STARTED),
        (1, 50.0, SubscriptionSign.SKIPPED),
        (1, 52.0, SubscriptionSign.UNSKIPPED),
    )

    snapshot = subscription_snapshot(events, cutoff=60.0, n_customers=2)

    assert snapshot.skips.tolist() == [1, 0]
    assert snapshot.pressure[0] > 0.5
    assert snapshot.pressure[1] < 0.05
    assert snapshot.strength[1] < snapshot.strength[0]
