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


def test_a_pause_told_twice_counts_once() -> None:
    # Customer 0: a webhook's pause and a sync's of the same pause, minutes apart, then the
    # sync's again after an edit of the still paused contract. Customer 1: paused once.
    # Customer 2: paused, resumed, paused again: two pauses.
    events = _events(
        (0, 0.0, SubscriptionSign.STARTED),
        (0, 40.0, SubscriptionSign.PAUSED),
        (0, 40.01, SubscriptionSign.PAUSED),
        (0, 44.0, SubscriptionSign.SKIPPED),
        (0, 47.0, SubscriptionSign.PAUSED),
        (1, 0.0, SubscriptionSign.STARTED),
        (1, 40.0, SubscriptionSign.PAUSED),
        (1, 44.0, SubscriptionSign.SKIPPED),
        (2, 0.0, SubscriptionSign.STARTED),
        (2, 20.0, SubscriptionSign.PAUSED),
        (2, 25.0, SubscriptionSign.RESUMED),
        (2, 40.0, SubscriptionSign.PAUSED),
    )

    snapshot = subscription_snapshot(events, cutoff=60.0, n_customers=3)

    assert snapshot.pauses.tolist() == [1, 1, 2]
    assert snapshot.pressure[0] == snapshot.pressure[1]
    assert snapshot.days_since_sign[0] == snapshot.days_since_sign[1] == 16.0
    assert snapshot.live.tolist() == [1.0, 1.0, 1.0]
