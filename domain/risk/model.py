"""The risk model: the shop's rhythm (MBG/NBD) corrected by what backtests teach.

For a customer with features z and MBG/NBD posterior (P(alive), λ ~ Gamma(s, rho), leaving
probability p after a purchase):

    π   = sigmoid(logit P(alive) + b_π + z·w_π)   probability of still being a customer
    m   = s/rho · exp(b_λ + z·w_λ)                daily purchase rate while a customer
    k   = s · exp(κ)                              Gamma shape of that rate (heterogeneity)
    μ   = e^δ + e^ω · p · m                       daily attrition: steady, and after purchases
    h'  = (1 - e^{-μh}) / μ                       expected days still a customer in window h
    N(h) | alive ~ NegBin(mean m·h', shape k)

so P(no purchase in h) = 1 - π + π (1 + m h'/k)^(-k) and E[N(h)] = π m h'. The attrition
follows MBG/NBD, where a customer may leave after each purchase: a frequent buyer has more
chances to leave within a long window, which a steady rate alone does not see and which
makes long-window counts of heavy buyers too high. With every correction at zero
(`prior_model()`) this is MBG/NBD with a slow steady attrition: the shop-independent prior.
The corrections are a MAP fit (Gaussian prior centred on it) of the zero-inflated NegBin
likelihood of purchase counts in backtest windows (`likelihood.SplitRows`), so a shop with little
history stays near the prior. Because the window length h enters the model structurally,
windows shorter than the horizon (young shops) still teach it.
"""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.features import FEATURES
from domain.risk.likelihood import (
    CHUNKS,
    Layout,
    Prior,
    SplitRows,
    base_alive,
    log_attrition,
    log_effective,
    sigmoid,
    times,
    whitening,
)
from domain.risk.optimize import minimize
from domain.risk.rhythm import Posterior

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Prior precision of each standardised coefficient, in backtest rows' worth of evidence.
L2_WEIGHTS = 50.0
L2_BIAS = 5.0
# Prior of the steady in-window attrition rate (per day): centred on leaving slowly.
PRIOR_LOG_DECAY = float(np.log(1e-3))
# Counts above this add nothing for the ranking and only cost time.
MAX_COUNT = 100
MAX_ITERATIONS = 200
VERSION = "zinb-mbg-3"


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
    log_dropout: float = 0.0

    @property
    def version(self) -> str:
        """A short, deterministic name of these coefficients (stored with every score)."""
        digest = hashlib.sha256(self.vector().tobytes()).hexdigest()[:10]
        return f"{VERSION}:{digest}"

    def vector(self) -> FloatArray:
        """The coefficients as one vector, in the layout the fit optimises (`Layout`)."""
        return np.concatenate(
            (
                [self.alive_bias],
                self.alive_weights,
                [self.rate_bias],
                self.rate_weights,
                [self.log_shape, self.log_decay, self.log_dropout],
            )
        )


def prior_model(features: tuple[str, ...] = FEATURES) -> RiskModel:
    """The shop-independent prior: MBG/NBD plus a slow in-window attrition."""
    size = len(features)
    return _unpack(_centre(Layout(size)), features, np.zeros(size), np.ones(size), rows=0)


@dataclass(frozen=True, slots=True)
class Prediction:
    p_no_purchase: FloatArray
    expected_purchases: FloatArray


def predict(
    model: RiskModel, raw: FloatArray, post: Posterior, window: float | FloatArray
) -> Prediction:
    """P(no purchase in the next `window` days) and the expected purchases in it."""
    z = (raw - model.mean) / model.scale
    alive = sigmoid(base_alive(post) + model.alive_bias + times(z, model.alive_weights))
    log_rate = np.log(post.shape / post.rate) + model.rate_bias + times(z, model.rate_weights)
    log_mu = log_attrition(log_rate, post.dropout, model.log_decay, model.log_dropout)[0]
    days = np.broadcast_to(np.asarray(window, dtype=np.float64), (z.shape[0],))
    mean_count = np.exp(log_rate + log_effective(days, log_mu)[0])
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
    lay = Layout(z.shape[1])
    transform = whitening(z)
    prior = prior_on(lay)
    with ThreadPoolExecutor(CHUNKS, thread_name_prefix="risk-fit") as pool:
        rows = SplitRows.build(z, post, window, np.minimum(count, MAX_COUNT), transform, pool)
        theta = minimize(lambda t: rows.objective(t, prior), _centre(lay), max_iter=MAX_ITERATIONS)
    return _unpack(rows.standardised(theta), FEATURES, mean, scale, rows=int(raw.shape[0]))


def prior_on(lay: Layout) -> Prior:
    """The Gaussian prior of the fit, for `lay.size` features."""
    precision = np.full(lay.width, L2_BIAS)
    return Prior(centre=_centre(lay), precision=precision, weights=L2_WEIGHTS)


def _centre(lay: Layout) -> FloatArray:
    theta = np.zeros(lay.width)
    theta[lay.log_decay] = PRIOR_LOG_DECAY
    return theta


def _unpack(
    theta: FloatArray, features: tuple[str, ...], mean: FloatArray, scale: FloatArray, rows: int
) -> RiskModel:
    lay = Layout(len(features))
    return RiskModel(
        features=features,
        mean=mean,
        scale=scale,
        alive_bias=float(theta[0]),
        alive_weights=theta[lay.alive].copy(),
        rate_bias=float(theta[lay.rate_bias]),
        rate_weights=theta[lay.rate].copy(),
        log_shape=float(theta[lay.log_shape]),
        log_decay=float(theta[lay.log_decay]),
        trained_rows=rows,
        log_dropout=float(theta[lay.log_dropout]),
    )
