"""The shop's purchase rhythm: an MBG/NBD model fitted in numpy, the risk model's backbone.

MBG/NBD (Batislam, Denizel & Filiztekin 2007): while alive a customer buys as a Poisson
process with rate λ ~ Gamma(r, alpha); at first purchase and after every purchase they leave
with probability p ~ Beta(a, b). From (x repeat purchases, t_x days first→last, T days
first→cut-off) it gives P(alive) and the posterior λ ~ Gamma(r + x, alpha + T). The Gamma
ratios only ever take integer steps, so they are prefix sums of logs: no `lgamma` needed.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.optimize import minimize

FloatArray = NDArray[np.float64]

# Rows used to fit: the likelihood has four parameters, a sample pins them down.
FIT_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class ShopRhythm:
    """MBG/NBD parameters in days: λ ~ Gamma(r, alpha), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def window(self, age: FloatArray, days: float) -> FloatArray:
        """The next `days` as the model counts them, for customers of tenure `age` (days)."""
        return np.full(age.shape[0], float(days))


# The shop-independent prior: a purchase every ~4 months on average, heterogeneous
# (r < 1), and about one customer in four leaving after each purchase. The fit is a MAP
# estimate around it with a wide log-normal spread, so a few hundred customers outweigh it.
PRIOR = ShopRhythm(r=0.5, alpha=60.0, a=0.8, b=2.5)
PRIOR_SPREAD = 1.5


@dataclass(frozen=True, slots=True)
class Posterior:
    """Per customer: log-odds of being alive, the Gamma posterior of the daily rate, and the
    posterior mean probability of leaving after a purchase."""

    logit_alive: FloatArray
    shape: FloatArray
    rate: FloatArray
    dropout: FloatArray

    def p_no_purchase(self, window: float) -> FloatArray:
        """MBG/NBD probability of no purchase in the next `window` days."""
        alive = 1.0 / (1.0 + np.exp(-self.logit_alive))
        silent = np.exp(-self.shape * np.log1p(window / self.rate))
        return np.asarray(1.0 - alive + alive * silent, dtype=np.float64)


def fit_rhythm(x: FloatArray, t_x: FloatArray, age: FloatArray, *, seed: int = 0) -> ShopRhythm:
    """MAP MBG/NBD fit; `x` repeat purchases, `t_x` and `age` in days (age ≥ t_x ≥ 0)."""
    if x.shape[0] > FIT_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(x.shape[0], FIT_ROWS, replace=False))
        x, t_x, age = x[rows], t_x[rows], age[rows]
    if x.shape[0] == 0:
        return PRIOR
    centre = np.log([PRIOR.r, PRIOR.alpha, PRIOR.a, PRIOR.b])
    counts = x.astype(np.int64)
    size = float(x.shape[0])

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        value, grad = _log_likelihood(np.exp(theta), counts, t_x, age)
        penalty = theta - centre
        spread = PRIOR_SPREAD**2
        total = -value + 0.5 * float(penalty @ penalty) / spread
        return total / size, (-grad + penalty / spread) / size

    theta = minimize(objective, centre, max_iter=300, tol=1e-10)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    return ShopRhythm(r=r, alpha=alpha, a=a, b=b)


def posterior(rhythm: ShopRhythm, x: FloatArray, t_x: FloatArray, age: FloatArray) -> Posterior:
    """Per-customer posterior under `rhythm` (same units as the fit: days)."""
    r, alpha, a, b = rhythm.r, rhythm.alpha, rhythm.a, rhythm.b
    shape = r + x
    odds_dead = np.log(a) - np.log(b + x) + shape * (np.log(alpha + age) - np.log(alpha + t_x))
    return Posterior(logit_alive=-odds_dead, shape=shape, rate=alpha + age, dropout=a / (a + b + x))


def _log_likelihood(
    params: FloatArray, x: NDArray[np.int64], t_x: FloatArray, age: FloatArray
) -> tuple[float, FloatArray]:
    """Total log-likelihood and its gradient with respect to the log-parameters."""
    r, alpha, a, b = (float(v) for v in params)
    steps = np.arange(int(x.max()) + 2, dtype=np.float64)
    log_r, inv_r = _prefix(r + steps)
    log_b, inv_b = _prefix(b + steps)
    log_ab, inv_ab = _prefix(a + b + steps)
    shape = r + x
    log_old, log_young = np.log(alpha + age), np.log(alpha + t_x)
    odds_dead = np.log(a) - np.log(b + x) + shape * (log_old - log_young)
    dead = 1.0 / (1.0 + np.exp(-odds_dead))
    value = (
        log_r[x]
        + r * np.log(alpha)
        + log_b[x + 1]
        - log_ab[x + 1]
        - shape * log_old
        + np.logaddexp(0.0, odds_dead)
    )
    d_r = inv_r[x] + np.log(alpha) - log_old + dead * (log_old - log_young)
    d_alpha = (
        r / alpha
        - shape / (alpha + age)
        + dead * shape * (1.0 / (alpha + age) - 1.0 / (alpha + t_x))
    )
    d_a = -inv_ab[x + 1] + dead / a
    d_b = inv_b[x + 1] - inv_ab[x + 1] - dead / (b + x)
    grad = np.array(
        [r * d_r.sum(), alpha * d_alpha.sum(), a * d_a.sum(), b * d_b.sum()], dtype=np.float64
    )
    return float(value.sum()), grad


def _prefix(terms: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Prefix sums of log(terms) and 1/terms, with a leading 0: entry k sums terms[:k]."""
    return (
        np.concatenate(([0.0], np.cumsum(np.log(terms)))),
        np.concatenate(([0.0], np.cumsum(1.0 / terms))),
    )
