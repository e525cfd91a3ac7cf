"""The risk model's likelihood on backtest rows: a zero-inflated NegBin of window counts.

Value and gradient are exact (`tests/domain/risk/test_fitting.py` checks the gradient
numerically). The fit runs on whitened features: the raw ones are strongly correlated (age,
gap, the MBG/NBD terms), which makes a quasi-Newton search crawl; the Gaussian prior is
carried over exactly, so the optimum is the same as on standardised features.
"""

import itertools
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.rhythm import Posterior

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Eigenvalues of the features' correlation below this are not scaled up by the whitening.
MIN_EIGENVALUE = 1e-3
# Parts a fit's rows are split into, one thread each (fixed: the split, not the machine,
# decides the order of the sums).
CHUNKS = 2


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each coefficient sits in the parameter vector, for `size` features."""

    size: int

    @property
    def width(self) -> int:
        return 2 * self.size + 5

    @property
    def alive(self) -> slice:
        return slice(1, self.size + 1)

    @property
    def rate_bias(self) -> int:
        return self.size + 1

    @property
    def rate(self) -> slice:
        return slice(self.size + 2, 2 * self.size + 2)

    # Three structural parameters close the vector: the NegBin shape, and steady and
    # purchase-triggered attrition.
    @property
    def log_shape(self) -> int:
        return 2 * self.size + 2

    @property
    def log_decay(self) -> int:
        return 2 * self.size + 3

    @property
    def log_dropout(self) -> int:
        return 2 * self.size + 4


@dataclass(frozen=True, slots=True)
class Prior:
    """Gaussian prior: its centre, the precision of the biases and structural parameters,
    and the precision of every standardised feature weight."""

    centre: FloatArray
    precision: FloatArray  # per parameter; the weights' entries are ignored
    weights: float


def whitening(z: FloatArray) -> FloatArray:
    """A matrix W such that `z @ W` has (nearly) uncorrelated unit-variance columns."""
    gram = np.einsum("ij,ik->jk", z, z) / max(z.shape[0], 1)
    # A constant column is all zeros once standardised: leave it alone.
    gram = gram + np.diag((np.diag(gram) < 1e-12).astype(np.float64))
    values, vectors = np.linalg.eigh(gram)
    return np.asarray(vectors / np.sqrt(np.maximum(values, MIN_EIGENVALUE)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Rows:
    """Backtest rows prepared for the likelihood; positive counts sorted descending."""

    u: FloatArray  # whitened features
    transform: FloatArray  # standardised weights = transform @ whitened weights
    base_alive: FloatArray
    base_rate: FloatArray
    shape: FloatArray
    dropout: FloatArray
    window: FloatArray
    count: FloatArray
    zero: NDArray[np.bool_]
    positive: IntArray  # rows with a purchase, most purchases first
    active: IntArray  # active[j]: how many of `positive` have more than j purchases

    @classmethod
    def build(
        cls,
        z: FloatArray,
        post: Posterior,
        window: FloatArray,
        count: IntArray,
        transform: FloatArray | None = None,
    ) -> "Rows":
        transform = np.eye(z.shape[1]) if transform is None else transform
        positive = np.flatnonzero(count > 0)
        positive = positive[np.argsort(-count[positive], kind="stable")]
        top = int(count.max()) if count.shape[0] else 0
        active = (count[positive][None, :] > np.arange(top)[:, None]).sum(axis=1)
        return cls(
            u=np.asarray(np.einsum("ij,jk->ik", z, transform), dtype=np.float64),
            transform=transform,
            base_alive=base_alive(post),
            base_rate=np.log(post.shape / post.rate),
            shape=post.shape,
            dropout=post.dropout,
            window=window,
            count=count.astype(np.float64),
            zero=count == 0,
            positive=positive,
            active=active.astype(np.int64),
        )

    def standardised(self, theta: FloatArray) -> FloatArray:
        """The same parameters with the weights on standardised (not whitened) features."""
        lay = Layout(self.u.shape[1])
        result = theta.copy()
        result[lay.alive] = times(self.transform, theta[lay.alive])
        result[lay.rate] = times(self.transform, theta[lay.rate])
        return result

    def objective(self, theta: FloatArray, prior: Prior) -> tuple[float, FloatArray]:
        """Mean negative log-posterior and its gradient, in whitened weights."""
        value, grad = self.negative_log_likelihood(theta)
        return _posterior(value, grad, theta, prior, self.transform, self.u.shape[0])

    def negative_log_likelihood(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """The rows' summed negative log-likelihood and its gradient, in whitened weights."""
        lay = Layout(self.u.shape[1])
        eta = self.base_alive + theta[0] + times(self.u, theta[lay.alive])
        v = self.base_rate + theta[lay.rate_bias] + times(self.u, theta[lay.rate])
        log_mu, share = log_attrition(v, self.dropout, theta[lay.log_decay], theta[lay.log_dropout])
        log_heff, d_heff = log_effective(self.window, log_mu)
        u = v + log_heff
        mean_count = np.exp(u)
        k = self.shape * np.exp(theta[lay.log_shape])
        n = self.count
        ratio = np.log1p(mean_count / k)
        kept = mean_count * k / (k + mean_count)  # = M·k/(k+M)
        alive = sigmoid(eta)
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
        ll_pos = -softplus(-eta) + log_sum - k * ratio + n * (u - np.log(k + mean_count))
        g_eta_pos = 1.0 - alive
        g_u_pos = n - (n + k) * mean_count / (k + mean_count)
        g_k_pos = k * (inv_sum - ratio + 1.0 - (k + n) / (k + mean_count))
        ll = np.where(zero, ll_zero, ll_pos)
        g_eta = np.where(zero, g_eta_zero, g_eta_pos)
        g_u = np.where(zero, g_u_zero, g_u_pos)
        g_k = np.where(zero, g_k_zero, g_k_pos)
        # log μ moves with the rate through the purchase-triggered share of attrition.
        g_attrition = g_u * d_heff
        g_v = g_u + g_attrition * share
        grad = np.empty_like(theta)
        grad[0] = g_eta.sum()
        grad[lay.alive] = through(self.u, g_eta)
        grad[lay.rate_bias] = g_v.sum()
        grad[lay.rate] = through(self.u, g_v)
        grad[lay.log_shape] = g_k.sum()
        grad[lay.log_decay] = float((g_attrition * (1.0 - share)).sum())
        grad[lay.log_dropout] = float((g_attrition * share).sum())
        return -float(ll.sum()), -grad

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


@dataclass(frozen=True, slots=True)
class SplitRows:
    """The same backtest rows in `CHUNKS` consecutive parts whose likelihoods are evaluated
    in threads: numpy's array loops release the GIL, so a fit uses two cores. The parts'
    sums are added in a fixed order, so the result depends on the data alone, not on the
    machine (it can differ from `Rows.objective` of the whole in the last bits)."""

    parts: tuple[Rows, ...]
    pool: Executor

    @classmethod
    def build(
        cls,
        z: FloatArray,
        post: Posterior,
        window: FloatArray,
        count: IntArray,
        transform: FloatArray,
        pool: Executor,
    ) -> "SplitRows":
        bounds = np.linspace(0, z.shape[0], CHUNKS + 1).astype(np.int64)
        parts = tuple(
            Rows.build(
                z[low:high],
                Posterior(
                    post.logit_alive[low:high],
                    post.shape[low:high],
                    post.rate[low:high],
                    post.dropout[low:high],
                ),
                window[low:high],
                count[low:high],
                transform,
            )
            for low, high in itertools.pairwise(bounds.tolist())
        )
        return cls(parts, pool)

    @property
    def transform(self) -> FloatArray:
        return self.parts[0].transform

    def standardised(self, theta: FloatArray) -> FloatArray:
        """`Rows.standardised`: the parts share the transform."""
        return self.parts[0].standardised(theta)

    def objective(self, theta: FloatArray, prior: Prior) -> tuple[float, FloatArray]:
        """Mean negative log-posterior and its gradient, as `Rows.objective` of all the rows."""
        sums = list(self.pool.map(lambda part: part.negative_log_likelihood(theta), self.parts))
        value = sum((part[0] for part in sums), 0.0)
        grad = sums[0][1].copy()
        for _, part_grad in sums[1:]:
            grad += part_grad
        rows = sum(part.u.shape[0] for part in self.parts)
        return _posterior(value, grad, theta, prior, self.transform, rows)


def _posterior(
    value: float,
    grad: FloatArray,
    theta: FloatArray,
    prior: Prior,
    transform: FloatArray,
    rows: int,
) -> tuple[float, FloatArray]:
    """The negative log-likelihood `value` and `grad` of `rows` rows with the prior added,
    per row."""
    lay = Layout(transform.shape[0])
    offset = theta - prior.centre
    plain = np.ones(lay.width, dtype=np.bool_)
    plain[lay.alive] = plain[lay.rate] = False
    value += 0.5 * float((prior.precision * offset * offset)[plain].sum())
    grad = grad.copy()
    grad[plain] += (prior.precision * offset)[plain]
    # The prior is on standardised weights w = T·w': its precision in w' is λ TᵀT.
    for part in (lay.alive, lay.rate):
        standard = times(transform, theta[part])
        value += 0.5 * prior.weights * float(np.dot(standard, standard))
        grad[part] += prior.weights * through(transform, standard)
    count = float(max(rows, 1))
    return value / count, grad / count


def log_attrition(
    log_rate: FloatArray, dropout: FloatArray, log_decay: float, log_dropout: float
) -> tuple[FloatArray, FloatArray]:
    """log μ for μ = e^{log_decay} + e^{log_dropout}·p·m, and the purchase-triggered share of μ.

    As in MBG/NBD a customer may leave after each purchase: one who buys m times a day and
    leaves after a purchase with probability p leaves at p·m a day. The steady part is
    leaving for no visible reason.
    """
    steady = np.exp(log_decay)
    triggered = np.exp(log_dropout + log_rate) * dropout
    total = steady + triggered
    return np.log(total), triggered / total


def log_effective(window: FloatArray, log_decay: FloatArray) -> tuple[FloatArray, FloatArray]:
    """log h' for h' = (1 - e^{-μh})/μ, and d log h' / d log μ."""
    decay = np.exp(log_decay)
    scaled = decay * window
    small = scaled < 1e-8
    safe = np.where(small, 1.0, scaled)
    log_heff = np.where(
        small, np.log(np.maximum(window, 1e-12)) - scaled / 2, np.log(-np.expm1(-safe) / decay)
    )
    # safe / expm1(safe), written so that it cannot overflow for a long window.
    derivative = np.where(small, -scaled / 2, safe * np.exp(-safe) / -np.expm1(-safe) - 1.0)
    return np.asarray(log_heff, dtype=np.float64), np.asarray(derivative, dtype=np.float64)


def base_alive(post: Posterior) -> FloatArray:
    return np.clip(post.logit_alive, -30.0, 30.0)


# einsum rather than `@`: a multi-threaded BLAS spends more time waking threads than
# computing these thin products, and the result must not depend on the thread count.
def times(matrix: FloatArray, weights: FloatArray) -> FloatArray:
    return np.asarray(np.einsum("ij,j->i", matrix, weights), dtype=np.float64)


def through(matrix: FloatArray, values: FloatArray) -> FloatArray:
    return np.asarray(np.einsum("ij,i->j", matrix, values), dtype=np.float64)


def softplus(value: FloatArray) -> FloatArray:
    return np.asarray(np.maximum(value, 0.0) + np.log1p(np.exp(-np.abs(value))), dtype=np.float64)


def sigmoid(value: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * value)), dtype=np.float64)
