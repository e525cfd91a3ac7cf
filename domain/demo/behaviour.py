"""How demo customers buy: one customer's history from acquisition up to `as_of`.

Shoppers follow a BG/NBD-like process: a purchase rate drawn from a gamma distribution
(heterogeneous customers), and after each purchase a chance to drop out for good, drawn from
a beta distribution; most first-time buyers never return. Shoppers about to drop out buy less
and wait longer before their last purchases, the sign Kizuki looks for. Subscribers (定期購入)
receive a delivery every 30 or 60 days, skip, postpone, pause and cancel; skips cluster before
a cancellation.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from domain.demo.catalogue import BUYABLE, SUBSCRIBABLE, TRIAL_SET, DemoProduct
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus

JST = timezone(timedelta(hours=9))
# When Japanese shoppers order (JST hour 0 … 23): lunch and late evening peaks.
HOUR_WEIGHTS = np.array(
    [2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 3, 4, 5, 7, 6, 4, 4, 4, 4, 5, 6, 8, 9, 9, 6], dtype=float
)
HOUR_WEIGHTS /= HOUR_WEIGHTS.sum()
_POPULARITY = np.array([p.popularity for p in BUYABLE]) / sum(p.popularity for p in BUYABLE)
_SUBSCRIBABLE_POPULARITY = np.array([p.popularity for p in SUBSCRIBABLE]) / sum(
    p.popularity for p in SUBSCRIBABLE
)
# Chance to cancel before the k-th repeat delivery (k = 1, 2, 3, 4, later): many stop right
# after the commitment of the first two deliveries.
CANCEL_HAZARD = (0.10, 0.24, 0.12, 0.08, 0.05)
MAX_PURCHASES = 40

CANCEL_REASONS = (
    "効果を実感できなかった",
    "飲み忘れ・使い忘れで在庫が余っている",
    "価格が高い",
    "肌に合わなかった",
    "他の商品を試したい",
    "引っ越し・生活環境の変化",
)
SKIP_REASONS = ("在庫が余っている", "旅行・出張のため", "使い切れていない")
PAUSE_REASONS = ("しばらく使用を控えたい", "在庫が余っている", "体調のため")


@dataclass(slots=True)
class PlannedOrder:
    ordered_at: datetime
    # (product, quantity, unit price)
    items: list[tuple[DemoProduct, int, int]]
    subscription: bool = False


@dataclass(slots=True)
class PlannedSubscription:
    started_at: datetime
    interval_days: int
    product: DemoProduct
    quantity: int
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    cancelled_at: datetime | None = None
    next_delivery_at: datetime | None = None
    events: list[tuple[SubscriptionEventKind, datetime, str | None]] = field(default_factory=list)


def local_time(rng: np.random.Generator, moment: datetime, as_of: datetime) -> datetime:
    """The same JST day at a typical shopping hour (not after `as_of`), whole seconds."""
    day = moment.astimezone(JST).replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = int(rng.choice(24, p=HOUR_WEIGHTS)) * 3600 + int(rng.integers(3600))
    placed = (day + timedelta(seconds=seconds)).astimezone(UTC)
    return placed if placed <= as_of else moment.replace(microsecond=0)


def _pick(rng: np.random.Generator) -> DemoProduct:
    return BUYABLE[int(rng.choice(len(BUYABLE), p=_POPULARITY))]


def _quantity(rng: np.random.Generator) -> int:
    return int(rng.choice(3, p=[0.78, 0.17, 0.05])) + 1


def shopper_orders(
    rng: np.random.Generator, acquired_at: datetime, as_of: datetime, *, loyal: float
) -> list[PlannedOrder]:
    """A one-off or repeat buyer; `loyal` scales the chance of staying after each purchase."""
    shape = 1.3
    rate = rng.gamma(shape, 1 / (shape * 55.0))  # purchases per day, mean one per 55 days
    dropout = rng.beta(1.1 * (2 - loyal), 0.9 * loyal)
    purchases = min(int(rng.geometric(dropout)), MAX_PURCHASES)
    first = PlannedOrder(acquired_at, [])
    if rng.random() < 0.4:
        first.items.append((TRIAL_SET, 1, TRIAL_SET.price))
        favourite = _pick(rng)
    else:
        favourite = _pick(rng)
        first.items.append((favourite, _quantity(rng), favourite.price))
    orders = [first]
    moment = acquired_at
    for number in range(1, purchases):
        fading = purchases >= 3 and number >= purchases - 2
        gap = max(3.0, rng.exponential(1 / rate)) * (1.6 if fading else 1.0)
        if gap > (as_of - moment).total_seconds() / 86_400:
            break
        moment = moment + timedelta(days=gap)
        order = PlannedOrder(local_time(rng, moment, as_of), [])
        main = favourite if rng.random() < 0.65 else _pick(rng)
        order.items.append((main, 1 if fading else _quantity(rng), main.price))
        if not fading and rng.random() < 0.3:
            extra = _pick(rng)
            if extra is not main:
                order.items.append((extra, 1, extra.price))
        orders.append(order)
    return orders


def _hazard(cycle: int) -> float:
    return CANCEL_HAZARD[min(cycle, len(CANCEL_HAZARD)) - 1]


def subscriber(
    rng: np.random.Generator, started_at: datetime, as_of: datetime
) -> tuple[PlannedSubscription, list[PlannedOrder]]:
    """A 定期購入 contract and its deliveries up to `as_of`."""
    product = SUBSCRIBABLE[int(rng.choice(len(SUBSCRIBABLE), p=_SUBSCRIBABLE_POPULARITY))]
    plan = PlannedSubscription(
        started_at=started_at,
        interval_days=30 if rng.random() < 0.7 else 60,
        product=product,
        quantity=2 if rng.random() < 0.12 else 1,
    )
    plan.events.append((SubscriptionEventKind.STARTED, started_at, None))
    cancel_at_cycle = next(
        (cycle for cycle in range(1, MAX_PURCHASES) if rng.random() < _hazard(cycle)), None
    )
    orders = [_delivery(rng, plan, started_at)]
    interval = timedelta(days=plan.interval_days)
    due, cycle, paused_cycles = started_at + interval, 1, 0
    while due <= as_of:
        notice = due - timedelta(days=int(rng.integers(3, 10)))
        if cycle == cancel_at_cycle:
            reason = CANCEL_REASONS[int(rng.integers(len(CANCEL_REASONS)))]
            plan.events.append((SubscriptionEventKind.CANCELLED, notice, reason))
            plan.status, plan.cancelled_at = SubscriptionStatus.CANCELLED, notice
            return plan, orders
        about_to_cancel = cancel_at_cycle is not None and 0 < cancel_at_cycle - cycle <= 2
        if paused_cycles:
            paused_cycles -= 1
            if not paused_cycles:
                plan.events.append((SubscriptionEventKind.RESUMED, notice, None))
                plan.status = SubscriptionStatus.ACTIVE
        elif rng.random() < (0.06 if about_to_cancel else 0.03):
            reason = PAUSE_REASONS[int(rng.integers(len(PAUSE_REASONS)))]
            plan.events.append((SubscriptionEventKind.PAUSED, notice, reason))
            plan.status, paused_cycles = SubscriptionStatus.PAUSED, int(rng.integers(1, 4))
        elif rng.random() < (0.30 if about_to_cancel else 0.05):
            reason = SKIP_REASONS[int(rng.integers(len(SKIP_REASONS)))]
            plan.events.append((SubscriptionEventKind.SKIPPED, notice, reason))
        elif rng.random() < 0.05:
            plan.events.append((SubscriptionEventKind.POSTPONED, notice, None))
            due += timedelta(days=14)
            if due <= as_of:
                orders.append(_delivery(rng, plan, due))
        else:
            orders.append(_delivery(rng, plan, due))
        due += interval
        cycle += 1
    if plan.status is SubscriptionStatus.ACTIVE:
        plan.next_delivery_at = due
    return plan, orders


def _delivery(rng: np.random.Generator, plan: PlannedSubscription, due: datetime) -> PlannedOrder:
    product = plan.product
    order = PlannedOrder(due, [(product, plan.quantity, product.subscription_price)], True)
    if rng.random() < 0.08:
        extra = _pick(rng)
        if extra is not product:
            order.items.append((extra, 1, extra.price))
    return order
