"""A shop's order and subscription history as columns, and its purchase occasions.

Times are *local days*: days (fractional allowed) since any fixed epoch, in the shop's time
zone, so that "the same day" means the shop's calendar day. Everything here is set-based
numpy: no Python loop runs per customer or per order.
"""

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from domain.errors import InvalidInput
from domain.order.models import OrderStatus
from domain.subscription.models import SubscriptionEventKind

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Days of history a shop may span (about 5,700 years) in the (customer, day) sort key.
DAY_BITS = 21


class OrderState(IntEnum):
    """What an order means for churn: only a `PURCHASE` is a purchase occasion."""

    PURCHASE = 0
    CANCELLED = 1
    REFUNDED = 2


ORDER_STATE: dict[OrderStatus, OrderState] = {
    OrderStatus.OPEN: OrderState.PURCHASE,
    OrderStatus.FULFILLED: OrderState.PURCHASE,
    OrderStatus.CANCELLED: OrderState.CANCELLED,
    OrderStatus.REFUNDED: OrderState.REFUNDED,
}


class SubscriptionSign(IntEnum):
    """Subscription events as codes; the signs of leaving carry a weight in `features`."""

    STARTED = 0
    RENEWED = 1
    SKIPPED = 2
    POSTPONED = 3
    PAUSED = 4
    RESUMED = 5
    CANCELLED = 6
    # A skip taken back: it cancels that skip's weight and count.
    UNSKIPPED = 7


SUBSCRIPTION_SIGN: dict[SubscriptionEventKind, SubscriptionSign] = {
    SubscriptionEventKind(kind.name.lower()): kind for kind in SubscriptionSign
}


@dataclass(frozen=True, slots=True)
class OrderColumns:
    """One shop's orders; `amount` is net of partial refunds, in minor units."""

    n_customers: int
    customer: IntArray
    day: FloatArray
    amount: FloatArray
    quantity: FloatArray
    state: NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class SubscriptionColumns:
    """One shop's subscription events: customer index, local day and `SubscriptionSign` code."""

    customer: IntArray
    day: FloatArray
    kind: NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class Purchases:
    """Purchase occasions before a cut-off, sorted by (customer, day); one per customer-day.

    Customer `c` owns rows `start[c]:start[c + 1]`; `cum_*` are prefix sums with a leading 0,
    so the sum over rows `i:j` is `cum[j] - cum[i]`.
    """

    n_customers: int
    customer: IntArray
    day: IntArray
    amount: FloatArray
    quantity: FloatArray
    start: IntArray
    cum_amount: FloatArray
    cum_quantity: FloatArray
    # Orders of any state before the cut-off, per customer: tells "only cancelled" from "none".
    orders_seen: IntArray

    def counts_before(self, cutoff: float) -> IntArray:
        """Purchase occasions strictly before local day `cutoff`, per customer."""
        return np.bincount(self.customer[self.day < cutoff], minlength=self.n_customers).astype(
            np.int64
        )


def order_columns(
    n_customers: int,
    customer: NDArray[np.integer] | list[int],
    day: NDArray[np.floating] | list[float],
    amount: NDArray[np.floating] | NDArray[np.integer] | list[float],
    quantity: NDArray[np.floating] | NDArray[np.integer] | list[float],
    state: NDArray[np.integer] | list[int] | None = None,
) -> OrderColumns:
    """Validated `OrderColumns`; raises `InvalidInput` naming the offending column."""
    cust = np.asarray(customer, dtype=np.int64).reshape(-1)
    size = cust.shape[0]
    days = _finite(day, "day", size)
    amounts = _finite(amount, "amount", size)
    quantities = _finite(quantity, "quantity", size)
    states = (
        np.zeros(size, dtype=np.int8)
        if state is None
        else np.asarray(state, dtype=np.int8).reshape(-1)
    )
    if n_customers < 0:
        raise InvalidInput("n_customers must not be negative", "n_customers")
    if states.shape[0] != size:
        raise InvalidInput("state has a different length from customer", "state")
    if size and (cust.min() < 0 or cust.max() >= n_customers):
        raise InvalidInput("customer index outside 0 .. n_customers - 1", "customer")
    if size and (states.min() < 0 or states.max() > max(OrderState)):
        raise InvalidInput("unknown order state code", "state")
    if size and quantities.min() < 0:
        raise InvalidInput("quantity must not be negative", "quantity")
    return OrderColumns(n_customers, cust, days, amounts, quantities, states)


def subscription_columns(
    customer: NDArray[np.integer] | list[int],
    day: NDArray[np.floating] | list[float],
    kind: NDArray[np.integer] | list[int],
    n_customers: int,
) -> SubscriptionColumns:
    """Validated `SubscriptionColumns`; raises `InvalidInput` naming the offending column."""
    cust = np.asarray(customer, dtype=np.int64).reshape(-1)
    size = cust.shape[0]
    days = _finite(day, "day", size)
    kinds = np.asarray(kind, dtype=np.int8).reshape(-1)
    if kinds.shape[0] != size:
        raise InvalidInput("kind has a different length from customer", "kind")
    if size and (cust.min() < 0 or cust.max() >= n_customers):
        raise InvalidInput("customer index outside 0 .. n_customers - 1", "customer")
    if size and (kinds.min() < 0 or kinds.max() > max(SubscriptionSign)):
        raise InvalidInput("unknown subscription event code", "kind")
    return SubscriptionColumns(cust, days, kinds)


def purchases_before(orders: OrderColumns, cutoff: float) -> Purchases:
    """Purchase occasions strictly before `cutoff`: valid orders merged per customer-day.

    Cancelled and fully refunded orders are no purchase; negative net amounts count as 0.
    """
    before = orders.day < cutoff
    seen = np.bincount(orders.customer[before], minlength=orders.n_customers).astype(np.int64)
    keep = before & (orders.state == OrderState.PURCHASE)
    cust = orders.customer[keep]
    day = np.floor(orders.day[keep]).astype(np.int64)
    amount = np.maximum(orders.amount[keep], 0.0)
    quantity = orders.quantity[keep]
    if cust.shape[0]:
        # One int64 key (customer, day) sorts several times faster than a two-key lexsort.
        offset = int(day.min())
        if int(day.max()) - offset >= 1 << DAY_BITS:
            raise InvalidInput(f"orders span more than {1 << DAY_BITS} days", "day")
        order = np.argsort((cust << DAY_BITS) | (day - offset))
        cust, day, amount, quantity = cust[order], day[order], amount[order], quantity[order]
    if cust.shape[0]:
        first = np.ones(cust.shape[0], dtype=np.bool_)
        first[1:] = (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])
        heads = np.flatnonzero(first)
        amount = np.add.reduceat(amount, heads)
        quantity = np.add.reduceat(quantity, heads)
        cust, day = cust[heads], day[heads]
    start = np.zeros(orders.n_customers + 1, dtype=np.int64)
    np.cumsum(np.bincount(cust, minlength=orders.n_customers), out=start[1:])
    return Purchases(
        n_customers=orders.n_customers,
        customer=cust,
        day=day,
        amount=amount,
        quantity=quantity,
        start=start,
        cum_amount=np.concatenate(([0.0], np.cumsum(amount))),
        cum_quantity=np.concatenate(([0.0], np.cumsum(quantity))),
        orders_seen=seen,
    )


def subset(purchases: Purchases, customers: IntArray) -> Purchases:
    """The purchases of `customers` (sorted indices), re-indexed as 0 .. len(customers) - 1."""
    counts = purchases.start[customers + 1] - purchases.start[customers]
    rows = _ranges(purchases.start[customers], counts)
    new_customer = np.repeat(np.arange(customers.shape[0], dtype=np.int64), counts)
    start = np.zeros(customers.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    amount = purchases.amount[rows]
    quantity = purchases.quantity[rows]
    return Purchases(
        n_customers=int(customers.shape[0]),
        customer=new_customer,
        day=purchases.day[rows],
        amount=amount,
        quantity=quantity,
        start=start,
        cum_amount=np.concatenate(([0.0], np.cumsum(amount))),
        cum_quantity=np.concatenate(([0.0], np.cumsum(quantity))),
        orders_seen=purchases.orders_seen[customers],
    )


def _ranges(starts: IntArray, counts: IntArray) -> IntArray:
    """Concatenated `arange(s, s + n)` for every pair, without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return np.arange(total, dtype=np.int64) + offsets


def _finite(values: object, name: str, size: int) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.shape[0] != size:
        raise InvalidInput(f"{name} has a different length from customer", name)
    if not np.isfinite(array).all():
        raise InvalidInput(f"{name} must be finite", name)
    return array
