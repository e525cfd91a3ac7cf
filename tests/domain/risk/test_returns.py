"""The Kaplan-Meier curve of days from a first to a second purchase."""

import numpy as np
import pytest

from domain.risk.returns import MIN_SEGMENT_RETURNS, return_curve


def test_with_everyone_followed_long_enough_the_curve_is_the_plain_share() -> None:
    to_second = np.array([3.0, 10.0, 10.0, 40.0, 0.0, 0.0])
    returned = np.array([True, True, True, True, False, False])
    follow_up = np.full(6, 1000.0)

    curve = return_curve(follow_up, to_second, returned)

    days = np.array([0.0, 3.0, 9.0, 10.0, 39.9, 40.0, 500.0])
    assert curve.probability(days, None) == pytest.approx(
        [0, 1 / 6, 1 / 6, 3 / 6, 3 / 6, 4 / 6, 4 / 6]
    )
    assert curve.share_back(days, None) == pytest.approx([0, 1 / 4, 1 / 4, 3 / 4, 3 / 4, 1, 1])
    assert curve.median_days(None, 1, default=99.0) == pytest.approx([10.0])


def test_customers_still_waiting_do_not_bias_the_curve() -> None:
    rng = np.random.default_rng(3)
    size = 200_000
    # Half come back after an exponential wait (mean 60 days); the cut-off finds every
    # customer somewhere between 0 and 200 days after their first order.
    returner = rng.random(size) < 0.5
    wait = np.ceil(rng.exponential(60.0, size))
    follow_up = rng.uniform(0.0, 200.0, size)
    returned = returner & (wait < follow_up)

    curve = return_curve(follow_up, np.where(returned, wait, 0.0), returned)

    days = np.array([30.0, 90.0, 150.0])
    truth = 0.5 * (1.0 - np.exp(-np.floor(days + 1) / 60.0))
    assert curve.probability(days, None) == pytest.approx(truth, abs=0.01)
    # The share already back is far too low at long waits: many are still waiting.
    naive = np.mean(returned & (wait <= days[-1]))
    assert naive < truth[-1] - 0.08


def test_a_segment_gets_its_own_curve_only_with_enough_returns() -> None:
    big, small = MIN_SEGMENT_RETURNS * 2, MIN_SEGMENT_RETURNS - 1
    segment = np.concatenate((np.zeros(big), np.ones(small), np.full(5, -1))).astype(np.int64)
    to_second = np.concatenate((np.full(big, 5.0), np.full(small, 50.0), np.full(5, 20.0)))
    returned = np.ones(segment.shape[0], dtype=np.bool_)
    follow_up = np.full(segment.shape[0], 365.0)

    curve = return_curve(follow_up, to_second, returned, segment)

    asked = np.array([0, 1, -1, 7], dtype=np.int64)
    shop = curve.probability(np.full(4, 10.0), None)
    assert curve.probability(np.full(4, 10.0), asked) == pytest.approx([1.0, *shop[1:]])
    assert curve.median_days(asked, 4, default=99.0) == pytest.approx([5.0, 5.0, 5.0, 5.0])
    assert shop[0] == pytest.approx(big / segment.shape[0])


def test_no_returns_at_all_give_zero_and_the_default() -> None:
    curve = return_curve(np.array([10.0, 30.0]), np.zeros(2), np.zeros(2, dtype=np.bool_))

    assert list(curve.probability(np.array([5.0, 50.0]), None)) == [0.0, 0.0]
    assert list(curve.share_back(np.array([5.0]), None)) == [0.0]
    assert list(curve.median_days(None, 2, default=42.0)) == [42.0, 42.0]
