"""The numerical core: gradients, the optimiser, and the model's structural limits."""

from collections.abc import Callable

import numpy as np
import pytest

from domain.risk.model import _Rows, predict, prior_model
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
    )
    window = rng.choice([30.0, 90.0, 200.0], rows)
    count = rng.poisson(0.7, rows) * (rng.random(rows) < 0.6)
    data = _Rows.build(z, post, window, count.astype(np.int64))
    theta = rng.normal(0.0, 0.2, 2 * features + 4)
    theta[-1] = np.log(2e-3)

    value, grad = data.objective(theta)

    assert np.isfinite(value)
    assert grad == pytest.approx(_numeric_gradient(data.objective, theta), abs=1e-7)


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
