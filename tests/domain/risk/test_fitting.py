"""The numerical core: gradients, the optimiser, and the model's structural limits."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from domain.risk.likelihood import Layout, Rows, SplitRows, whitening
from domain.risk.model import predict, prior_model, prior_on
from domain.risk.optimize import minimize
from domain.risk.rhythm import PRIOR, Posterior, _log_likelihood, posterior


def _numeric_gradient(
    f: Callable[[np.ndarray], tuple[float, np.ndarray]], theta: np.ndarray, step: float = 1e-6
) -> np.ndarray:
    grad = np.zeros_like(theta)
    for i in range(theta.shape[0]):
        e = np.zeros_like(theta)
        e[i] = step
        grad[i] = (f(theta + e)[0] - f(theta - e)[0]) / (2 * step)
    return grad


def test_the_risk_likelihood_gradient_is_exact() -> None:
    rng = np.random.default_rng(71)
    rows, features = 400, 3
    z = rng.normal(size=(rows, features))
    post = Posterior(
        logit_alive=rng.normal(1.0, 1.0, rows),
        shape=rng.uniform(0.3, 5.0, rows),
        rate=rng.uniform(20.0, 300.0, rows),
        dropout=rng.uniform(0.05, 0.5, rows),
    )
    window = rng.choice([30.0, 90.0, 200.0], rows)
    count = rng.poisson(0.7, rows) * (rng.random(rows) < 0.6)
    # Correlated columns, as the real features are, so that the whitening does something.
    z[:, 2] = 0.8 * z[:, 0] + 0.2 * z[:, 2]
    data = Rows.build(z, post, window, count.astype(np.int64), whitening(z))
    lay = Layout(features)
    theta = rng.normal(0.0, 0.2, lay.width)
    theta[lay.log_decay] = np.log(2e-3)
    prior = prior_on(lay)

    def objective(t: np.ndarray) -> tuple[float, np.ndarray]:
        return data.objective(t, prior)

    value, grad = objective(theta)

    assert np.isfinite(value)
    assert grad == pytest.approx(_numeric_gradient(objective, theta), abs=1e-7)


def test_rows_split_across_threads_give_the_objective_of_all_rows() -> None:
    rng = np.random.default_rng(73)
    rows, features = 1001, 4
    z = rng.normal(size=(rows, features))
    post = Posterior(
        logit_alive=rng.normal(1.0, 1.0, rows),
        shape=rng.uniform(0.3, 5.0, rows),
        rate=rng.uniform(20.0, 300.0, rows),
        dropout=rng.uniform(0.05, 0.5, rows),
    )
    window = rng.choice([30.0, 90.0, 200.0], rows)
    count = (rng.poisson(1.2, rows) * (rng.random(rows) < 0.6)).astype(np.int64)
    # The heaviest buyers all in the first part: the parts' count steps differ.
    count[:10] += 40
    transform = whitening(z)
    lay = Layout(features)
    theta = rng.normal(0.0, 0.2, lay.width)
    theta[lay.log_decay] = np.log(2e-3)
    prior = prior_on(lay)
    whole = Rows.build(z, post, window, count, transform)

    with ThreadPoolExecutor(2) as pool:
        split = SplitRows.build(z, post, window, count, transform, pool)
        value, grad = split.objective(theta, prior)
        again = split.objective(theta, prior)

    assert [part.u.shape[0] for part in split.parts] == [500, 501]
    expected_value, expected_grad = whole.objective(theta, prior)
    assert value == pytest.approx(expected_value, rel=1e-12)
    assert grad == pytest.approx(expected_grad, rel=1e-10, abs=1e-14)
    # The same data give the same bits, whatever the threads' timing.
    assert again[0] == value
    assert np.array_equal(again[1], grad)
    assert np.array_equal(split.standardised(theta), whole.standardised(theta))


def test_the_rhythm_likelihood_gradient_is_exact() -> None:
    rng = np.random.default_rng(72)
    x = rng.poisson(1.5, 300)
    age = rng.uniform(50.0, 400.0, 300)
    t_x = np.where(x > 0, rng.uniform(0.0, 1.0, 300) * age, 0.0)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return _log_likelihood(np.exp(theta), x, t_x, age)

    theta = np.log([0.7, 30.0, 0.9, 2.0])
    assert objective(theta)[1] == pytest.approx(_numeric_gradient(objective, theta), rel=1e-5)


def test_the_optimiser_finds_the_minimum_of_a_narrow_valley() -> None:
    def rosenbrock(p: np.ndarray) -> tuple[float, np.ndarray]:
        x, y = p
        value = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
        return float(value), grad

    found = minimize(rosenbrock, np.array([-1.2, 1.0]), max_iter=500, gtol=1e-9)

    assert found == pytest.approx([1.0, 1.0], abs=1e-5)


def test_the_prior_model_is_mbg_nbd() -> None:
    x = np.array([0.0, 0.0, 2.0, 7.0])
    t_x = np.array([0.0, 0.0, 40.0, 300.0])
    age = np.array([10.0, 200.0, 100.0, 320.0])
    post = posterior(PRIOR, x, t_x, age)
    model = prior_model()
    raw = np.zeros((4, len(model.features)))

    prediction = predict(model, raw, post, 0.5)
    # Over a tiny window, in-window attrition is negligible and the prior is exactly MBG/NBD.
    assert prediction.p_no_purchase == pytest.approx(post.p_no_purchase(0.5), abs=1e-5)
    assert np.all(np.diff(predict(model, raw, post, 90.0).p_no_purchase[:2]) > 0)


def test_whitening_the_features_does_not_move_the_optimum() -> None:
    rng = np.random.default_rng(73)
    rows, features = 3000, 3
    base = rng.normal(size=(rows, 1))
    z = np.hstack((base, 0.9 * base + 0.1 * rng.normal(size=(rows, 1)), rng.normal(size=(rows, 1))))
    post = Posterior(
        logit_alive=rng.normal(1.0, 1.0, rows),
        shape=rng.uniform(0.3, 5.0, rows),
        rate=rng.uniform(20.0, 300.0, rows),
        dropout=rng.uniform(0.05, 0.5, rows),
    )
    window = rng.choice([30.0, 90.0], rows)
    count = (rng.poisson(np.exp(0.5 * z[:, 0])) * (rng.random(rows) < 0.6)).astype(np.int64)
    lay = Layout(features)
    prior = prior_on(lay)
    start = prior.centre

    def fit(transform: np.ndarray) -> np.ndarray:
        data = Rows.build(z, post, window, count, transform)

        def objective(t: np.ndarray) -> tuple[float, np.ndarray]:
            return data.objective(t, prior)

        theta = minimize(objective, start, max_iter=3000, tol=0.0, gtol=1e-9)
        return data.standardised(theta)

    found = [fit(np.eye(features)), fit(whitening(z))]

    assert found[1] == pytest.approx(found[0], abs=1e-4)


def test_a_frequent_buyer_is_more_likely_to_leave_within_a_long_window() -> None:
    # Two customers alike but for their purchase rate (10x): leaving after a purchase is
    # ten times as likely per day for the frequent one.
    post = Posterior(
        logit_alive=np.array([3.0, 3.0]),
        shape=np.array([2.0, 20.0]),
        rate=np.array([200.0, 200.0]),
        dropout=np.array([0.2, 0.2]),
    )
    model = prior_model()
    raw = np.zeros((2, len(model.features)))

    short = predict(model, raw, post, 1.0).expected_purchases
    long = predict(model, raw, post, 365.0).expected_purchases

    assert short[1] / short[0] == pytest.approx(10.0, rel=0.02)
    assert long[1] / long[0] < 5.0
