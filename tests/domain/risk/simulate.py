"""Synthetic shops drawn from known processes, for the risk model's tests (numpy only)."""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.history import OrderColumns, SubscriptionColumns, SubscriptionSign, order_columns

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Shop:
    orders: OrderColumns
    # Purchases each customer makes in [as_of, as_of + horizon): the truth to compare with.
    future: IntArray
    as_of: float
    horizon: int


def poisson_shop(
    customers: int,
    *,
    seed: int,
    as_of: float = 540.0,
    horizon: int = 90,
    mean_days_between: float = 45.0,
    mean_lifetime_days: float = 300.0,
) -> Shop:
    """Customers arrive over 270 days, buy as Poisson processes (Gamma rates) until they leave.

    Lifetimes are exponential (Pareto/NBD-like), so the risk model is fitted to a process it
    does not assume; amounts and quantities are lognormal/Poisson per customer.
    """
    rng = np.random.default_rng(seed)
    arrive = rng.uniform(0.0, 270.0, customers)
    rate = rng.gamma(1.5, 1.0 / (1.5 * mean_days_between), customers)
    leave = arrive + rng.exponential(mean_lifetime_days, customers)
    end = np.minimum(leave, as_of + horizon)
    repeats = rng.poisson(rate * np.maximum(end - arrive, 0.0))
    customer = np.concatenate((np.arange(customers), np.repeat(np.arange(customers), repeats)))
    day = np.concatenate((arrive, rng.uniform(np.repeat(arrive, repeats), np.repeat(end, repeats))))
    level = rng.lognormal(8.0, 0.4, customers)
    amount = np.round(level[customer] * rng.lognormal(0.0, 0.2, customer.shape[0]))
    quantity = np.asarray(rng.poisson(1.0, customer.shape[0]), dtype=np.float64) + 1.0
    in_window = (day >= as_of) & (np.floor(day) < as_of + horizon)
    future = _distinct_days(customer[in_window], day[in_window], customers)
    orders = order_columns(customers, customer, day, amount, quantity)
    return Shop(orders, future, as_of, horizon)


def _distinct_days(customer: IntArray, day: FloatArray, customers: int) -> IntArray:
    """Purchase occasions (distinct customer-days) per customer."""
    keys = np.unique(customer * 100_000 + np.floor(day).astype(np.int64))
    return np.bincount(keys // 100_000, minlength=customers).astype(np.int64)


@dataclass(frozen=True, slots=True)
class SubscriptionShop:
    orders: OrderColumns
    events: SubscriptionColumns
    future: IntArray
    cancelled: NDArray[np.bool_]
    as_of: float
    horizon: int


def subscription_shop(customers: int, *, seed: int) -> SubscriptionShop:
    """Monthly subscribers; some skip now and then, some cancel and then stop buying.

    Before cancelling, a customer's order history looks like anyone else's, so only the
    subscription events tell who is about to leave.
    """
    rng = np.random.default_rng(seed)
    as_of, horizon = 400.0, 60
    start = rng.uniform(0.0, 200.0, customers)
    # Half of the customers cancel at some point; after that they buy nothing.
    cancel_at = np.where(rng.random(customers) < 0.5, rng.uniform(200.0, 520.0, customers), 1e9)
    months = np.arange(0, 16)
    due = start[:, None] + 30.0 * months[None, :]
    keep = (due < np.minimum(cancel_at, as_of + horizon)[:, None]) & (rng.random(due.shape) > 0.1)
    customer = np.broadcast_to(np.arange(customers)[:, None], due.shape)[keep]
    day = due[keep]
    amount = np.full(customer.shape[0], 3000.0)
    quantity = np.ones(customer.shape[0])
    skipped = (due < np.minimum(cancel_at, as_of)[:, None]) & ~keep
    started = np.arange(customers)
    cancel_rows = np.flatnonzero(cancel_at < 1e8)
    event_customer = np.concatenate(
        (started, np.broadcast_to(np.arange(customers)[:, None], due.shape)[skipped], cancel_rows)
    )
    event_day = np.concatenate((start, due[skipped], cancel_at[cancel_rows]))
    event_kind = np.concatenate(
        (
            np.full(customers, SubscriptionSign.STARTED),
            np.full(int(skipped.sum()), SubscriptionSign.SKIPPED),
            np.full(cancel_rows.shape[0], SubscriptionSign.CANCELLED),
        )
    ).astype(np.int8)
    in_window = (day >= as_of) & (day < as_of + horizon)
    future = np.bincount(customer[in_window], minlength=customers).astype(np.int64)
    orders = order_columns(customers, customer, day, amount, quantity)
    events = SubscriptionColumns(event_customer.astype(np.int64), event_day, event_kind)
    return SubscriptionShop(
        orders, events, future, (cancel_at < as_of) & (cancel_at > as_of - 120), as_of, horizon
    )


def auc(score: FloatArray, label: NDArray[np.bool_]) -> float:
    """ROC AUC of `score` for `label`, ties counted half."""
    order = np.argsort(score, kind="stable")
    _, inverse, counts = np.unique(score[order], return_inverse=True, return_counts=True)
    ranks = np.empty(score.shape[0])
    ranks[order] = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    positives = float(label.sum())
    negatives = label.shape[0] - positives
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def mbg_shop(customers: int, *, seed: int, as_of: float = 540.0, horizon: int = 180) -> Shop:
    """MBG/NBD customers: Gamma purchase rates, and after each purchase (the first included)
    a Beta-distributed chance of leaving for good.

    Frequent buyers have more chances to leave, so over a long window their counts fall
    short of rate times days: the structure a steady attrition rate cannot express.
    """
    rng = np.random.default_rng(seed)
    arrive = rng.uniform(0.0, 270.0, customers)
    rate = rng.gamma(2.0, 1.0 / 60.0, customers)
    leave = rng.beta(1.0, 4.0, customers)
    end = as_of + horizon
    days = [arrive]
    owners = [np.arange(customers)]
    t = arrive.copy()
    alive = rng.random(customers) >= leave
    while alive.any():
        t = t + rng.exponential(1.0, customers) / rate
        bought = alive & (t < end)
        days.append(t[bought])
        owners.append(np.flatnonzero(bought))
        alive = bought & (rng.random(customers) >= leave)
    customer = np.concatenate(owners)
    day = np.concatenate(days)
    amount = np.full(customer.shape[0], 2500.0)
    quantity = np.ones(customer.shape[0])
    in_window = (day >= as_of) & (np.floor(day) < as_of + horizon)
    future = _distinct_days(customer[in_window], day[in_window], customers)
    orders = order_columns(customers, customer, day, amount, quantity)
    return Shop(orders, future, as_of, horizon)


def first_basket_shop(customers: int, *, seed: int) -> Shop:
    """Whether a first-time buyer ever comes back depends on the first basket, and not
    monotonically: mid-sized first orders return far more often than small or large ones."""
    rng = np.random.default_rng(seed)
    as_of, horizon = 400.0, 90
    arrive = rng.uniform(0.0, 380.0, customers)
    first_amount = np.round(rng.lognormal(8.0, 0.6, customers))
    low, high = np.quantile(first_amount, [1 / 3, 2 / 3])
    middle = (first_amount > low) & (first_amount <= high)
    returner = rng.random(customers) < np.where(middle, 0.7, 0.15)
    end = np.minimum(arrive + rng.exponential(300.0, customers), as_of + horizon)
    repeats = np.where(returner, rng.poisson(np.maximum(end - arrive, 0.0) / 90.0), 0)
    customer = np.concatenate((np.arange(customers), np.repeat(np.arange(customers), repeats)))
    day = np.concatenate((arrive, rng.uniform(np.repeat(arrive, repeats), np.repeat(end, repeats))))
    amount = np.concatenate((first_amount, np.full(int(repeats.sum()), 3000.0)))
    quantity = np.ones(customer.shape[0])
    in_window = (day >= as_of) & (np.floor(day) < as_of + horizon)
    future = _distinct_days(customer[in_window], day[in_window], customers)
    orders = order_columns(customers, customer, day, amount, quantity)
    return Shop(orders, future, as_of, horizon)
