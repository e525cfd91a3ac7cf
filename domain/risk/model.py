"""The risk model: the shop's rhythm (MBG/NBD) corrected by what backtests teach.

For a customer with features z and MBG/NBD posterior (P(alive), λ ~ Gamma(s, rho)):

    π   = sigmoid(logit P(alive) + b_π + z·w_π)   probability of still being a customer
    m   = s/rho · exp(b_λ + z·w_λ)                daily purchase rate while a customer
    k   = s · exp(κ)                              Gamma shape of that rate (heterogeneity)
    h'  = (1 - e^{-μh}) / μ                       expected days still a customer in window h
    N(h) | alive ~ NegBin(mean m·h', shape k)

so P(no purchase in h) = 1 - π + π (1 + m h'/k)^(-k) and E[N(h)] = π m h'. With every
correction at zero (`prior_model()`) this is MBG/NBD with a slow in-window attrition: the
shop-independent prior. The corrections are a MAP fit (Gaussian prior centred on it) of the
zero-inflated NegBin likelihood of purchase counts in backtest windows, so a shop with
little history stays near the prior. Because the window length h enters the model
structurally, windows shorter than the horizon (young shops) still teach it.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.features import FEATURES
from domain.risk.optimize import minimize
from domain.risk.rhythm import Posterior

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Prior precision of each standardised coefficient, in backtest rows' worth of evidence.
L2_WEIGHTS = 50.0
L2_BIAS = 5.0
# Prior of the in-window attrition rate μ (per day): centred on leaving slowly.
PRIOR_LOG_DECAY = float(np.log(1e-3))
# Counts above this add nothing for the ranking and only cost time.
MAX_COUNT = 100
MAX_ITERATIONS = 300
VERSION = "zinb-mbg-1"


@dataclass(frozen=True, slots=True)
class RiskModel:
    """Coefficients of one shop's risk model, over standardised `features`."""

    features: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    alive_bias: float
    alive_weights: FloatArray
    rate_bias: float
    rate_weights: FloatArray
    log_shape: float
    log_decay: float
    trained_rows: int

    @property
    def version(self) -> str:
        """A short, deterministic name of these coefficients (stored with every score)."""
        digest = hashlib.sha256(self.vector().tobytes()).hexdigest()[:10]
        return f"{VERSION}:{digest}"

    def vector(self) -> FloatArray:
        """The coefficients as one vector, in the layout the fit optimises."""
        return np.concatenate(
            (
                [self.alive_bias],
                self.alive_weights,
                [self.rate_bias],
                self.rate_weights,
                [self.log_shape, self.log_decay],
            )
        )


def prior_model(features: tuple[str, ...] = FEATURES) -> RiskModel:
    """The shop-independent prior: MBG/NBD plus a slow in-window attrition."""
    size = len(features)
    return _unpack(_prior_vector(size), features, np.zeros(size), np.ones(size), rows=0)


@dataclass(frozen=True, slots=True)
class Prediction:
    p_no_purchase: FloatArray
    expected_purchases: FloatArray


def predict(model: RiskModel, raw: FloatArray, post: Posterior, window: float) -> Prediction:
    """P(no purchase in the next `window` days) and the expected purchases in it."""
    z = (raw - model.mean) / model.scale
    alive = _sigmoid(_base_alive(post) + model.alive_bias + _times(z, model.alive_weights))
    log_rate = np.log(post.shape / post.rate) + model.rate_bias + _times(z, model.rate_weights)
    log_heff = _log_effective(np.full(z.shape[0], window), model.log_decay)[0]
    mean_count = np.exp(log_rate + log_heff)
    shape = post.shape * np.exp(model.log_shape)
    silent = np.exp(-shape * np.log1p(mean_count / shape))
    p_none = 1.0 - alive * (1.0 - silent)
    return Prediction(
        p_no_purchase=np.clip(p_none, 1e-6, 1.0 - 1e-6),
        expected_purchases=alive * mean_count,
    )


def fit_model(raw: FloatArray, post: Posterior, window: FloatArray, count: IntArray) -> RiskModel:
    """MAP fit on backtest rows: features before a cut-off, purchases in the window after it."""
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0)
    # A constant column (e.g. no subscriptions in this shop) keeps a zero coefficient.
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (raw - mean) / scale
    data = _Rows.build(z, post, window, np.minimum(count, MAX_COUNT))
    theta = minimize(data.objective, _prior_vector(z.shape[1]), max_iter=MAX_ITERATIONS)
    return _unpack(theta, FEATURES, mean, scale, rows=int(raw.shape[0]))


def _prior_vector(size: int) -> FloatArray:
    theta = np.zeros(2 * size + 4)
    theta[-1] = PRIOR_LOG_DECAY
    return theta


def _unpack(
    theta: FloatArray, features: tuple[str, ...], mean: FloatArray, scale: FloatArray, rows: int
) -> RiskModel:
    size = len(features)
    return RiskModel(
        features=features,
        mean=mean,
        scale=scale,
        alive_bias=float(theta[0]),
        alive_weights=theta[1 : size + 1].copy(),
        rate_bias=float(theta[size + 1]),
        rate_weights=theta[size + 2 : 2 * size + 2].copy(),
        log_shape=float(theta[-2]),
        log_decay=float(theta[-1]),
        trained_rows=rows,
    )


@dataclass(frozen=True, slots=True)
class _Rows:
    """Backtest rows prepared for the likelihood; positive counts sorted descending."""

    z: FloatArray
    base_alive: FloatArray
    base_rate: FloatArray
    shape: FloatArray
    window: FloatArray
    count: FloatArray
    zero: NDArray[np.bool_]
    positive: IntArray  # rows with a purchase, most purchases first
    active: IntArray  # active[j]: how many of `positive` have more than j purchases

    @classmethod
    def build(cls, z: FloatArray, post: Posterior, window: FloatArray, count: IntArray) -> "_Rows":
        positive = np.flatnonzero(count > 0)
        positive = positive[np.argsort(-count[positive], kind="stable")]
        top = int(count.max()) if count.shape[0] else 0
        active = (count[positive][None, :] > np.arange(top)[:, None]).sum(axis=1)
        return cls(
            z=z,
            base_alive=_base_alive(post),
            base_rate=np.log(post.shape / post.rate),
            shape=post.shape,
            window=window,
            count=count.astype(np.float64),
            zero=count == 0,
            positive=positive,
            active=active.astype(np.int64),
        )

    def objective(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """Mean negative log-posterior and its gradient."""
        size = self.z.shape[1]
        alive_at, rate_at = np.r_[1 : size + 1], np.r_[size + 2 : 2 * size + 2]
        log_shape, log_decay = theta[-2], theta[-1]
        eta = self.base_alive + theta[0] + _times(self.z, theta[alive_at])
        log_heff, d_heff = _log_effective(self.window, log_decay)
        u = self.base_rate + theta[size + 1] + _times(self.z, theta[rate_at]) + log_heff
        mean_count = np.exp(u)
        k = self.shape * np.exp(log_shape)
        n = self.count
        ratio = np.log1p(mean_count / k)
        kept = mean_count * k / (k + mean_count)  # = M·k/(k+M)
        alive = _sigmoid(eta)
        silent = np.exp(-k * ratio)
        denom = 1.0 - np.clip(alive * (1.0 - silent), 0.0, 1.0 - 1e-12)
        zero = self.zero
        # Zero counts: log(1 - π + π p0).
        ll_zero = np.log(denom)
        g_eta_zero = alive * (1.0 - alive) * (silent - 1.0) / denom
        g_u_zero = -alive * silent * kept / denom
        g_k_zero = alive * silent * (kept - k * ratio) / denom
        # Positive counts: log π + log NegBin(n; M, k), the n-only constant dropped.
        log_sum, inv_sum = self._gamma_steps(k)
        ll_pos = -_softplus(-eta) + log_sum - k * ratio + n * (u - np.log(k + mean_count))
        g_eta_pos = 1.0 - alive
        g_u_pos = n - (n + k) * mean_count / (k + mean_count)
        g_k_pos = k * (inv_sum - ratio + 1.0 - (k + n) / (k + mean_count))
        ll = np.where(zero, ll_zero, ll_pos)
        g_eta = np.where(zero, g_eta_zero, g_eta_pos)
        g_u = np.where(zero, g_u_zero, g_u_pos)
        g_k = np.where(zero, g_k_zero, g_k_pos)
        grad = np.empty_like(theta)
        grad[0] = g_eta.sum()
        grad[alive_at] = _through(self.z, g_eta)
        grad[size + 1] = g_u.sum()
        grad[rate_at] = _through(self.z, g_u)
        grad[-2] = g_k.sum()
        grad[-1] = float((g_u * d_heff).sum())
        value, grad = -float(ll.sum()), -grad
        centre = _prior_vector(size)
        precision = np.full(theta.shape[0], L2_BIAS)
        precision[alive_at] = L2_WEIGHTS
        precision[rate_at] = L2_WEIGHTS
        offset = theta - centre
        value += 0.5 * float((precision * offset) @ offset)
        grad += precision * offset
        rows = float(self.z.shape[0])
        return value / rows, grad / rows

    def _gamma_steps(self, k: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Σ_{j<n} log(k + j) and Σ_{j<n} 1/(k + j) per row: the integer steps of lgamma/digamma."""
        log_sum = np.zeros(k.shape[0])
        inv_sum = np.zeros(k.shape[0])
        rows = self.positive
        k_pos = k[rows]
        log_acc = np.zeros(rows.shape[0])
        inv_acc = np.zeros(rows.shape[0])
        for j, active in enumerate(self.active):
            head = k_pos[:active] + j
            log_acc[:active] += np.log(head)
            inv_acc[:active] += 1.0 / head
        log_sum[rows] = log_acc
        inv_sum[rows] = inv_acc
        return log_sum, inv_sum


def _log_effective(window: FloatArray, log_decay: float) -> tuple[FloatArray, FloatArray]:
    """log h' for h' = (1 - e^{-μh})/μ, and d log h' / d log μ."""
    decay = np.exp(log_decay)
    scaled = decay * window
    small = scaled < 1e-8
    safe = np.where(small, 1.0, scaled)
    log_heff = np.where(
        small, np.log(np.maximum(window, 1e-12)) - scaled / 2, np.log(-np.expm1(-safe) / decay)
    )
    derivative = np.where(small, -scaled / 2, safe / np.expm1(safe) - 1.0)
    return np.asarray(log_heff, dtype=np.float64), np.asarray(derivative, dtype=np.float64)


def _base_alive(post: Posterior) -> FloatArray:
    return np.clip(post.logit_alive, -30.0, 30.0)


# einsum rather than `@`: a multi-threaded BLAS spends more time waking threads than
# computing these thin products, and the result must not depend on the thread count.
def _times(matrix: FloatArray, weights: FloatArray) -> FloatArray:
    return np.asarray(np.einsum("ij,j->i", matrix, weights), dtype=np.float64)


def _through(matrix: FloatArray, values: FloatArray) -> FloatArray:
    return np.asarray(np.einsum("ij,i->j", matrix, values), dtype=np.float64)


def _softplus(value: FloatArray) -> FloatArray:
    return np.asarray(np.maximum(value, 0.0) + np.log1p(np.exp(-np.abs(value))), dtype=np.float64)


def _sigmoid(value: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * value)), dtype=np.float64)
