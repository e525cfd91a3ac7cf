"""`generate_shop`: a seeded, realistic D2C skincare / health-food shop as canonical records.

Customers are acquired over the two years up to `as_of`, more of them lately (the shop grows),
on Shopify, Rakuten and Amazon. The same seed, size and `as_of` give the same records, bit for
bit; records stream out in batches, so memory does not grow with the number of customers.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from domain.demo import behaviour
from domain.demo.catalogue import FREE_SHIPPING_FROM, SHIPPING_FEE
from domain.demo.people import make_person, order_id, subscription_id
from domain.order.models import OrderStatus
from domain.platforms import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    Platform,
    RecordBatch,
    SubscriptionEventRecord,
    SubscriptionRecord,
)

MALLS = (Platform.SHOPIFY, Platform.RAKUTEN, Platform.AMAZON)
MALL_SHARES = np.array([0.45, 0.35, 0.20])
# Amazon offers no 定期購入 the shop sees; its buyers also come back less.
SUBSCRIBER_SHARE = {Platform.SHOPIFY: 0.18, Platform.RAKUTEN: 0.14, Platform.AMAZON: 0.0}
LOYALTY = {Platform.SHOPIFY: 1.0, Platform.RAKUTEN: 0.95, Platform.AMAZON: 0.7}
HISTORY_DAYS = 730
# Customers simulated per step; fixed, so that output does not depend on anything else.
BLOCK = 500


@dataclass(frozen=True, slots=True)
class DemoBatch:
    """Records of one mall, ready for `ingest_batch` on that mall's connection."""

    platform: Platform
    records: RecordBatch


@dataclass(slots=True)
class _MallRecords:
    customers: list[CustomerRecord] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    subscriptions: list[SubscriptionRecord] = field(default_factory=list)
    events: list[SubscriptionEventRecord] = field(default_factory=list)

    def batch(self) -> RecordBatch:
        return RecordBatch(
            tuple(self.customers), tuple(self.orders), tuple(self.subscriptions), tuple(self.events)
        )


@dataclass(slots=True)
class _Counters:
    orders: dict[Platform, int] = field(default_factory=lambda: defaultdict(int))
    subscriptions: dict[Platform, int] = field(default_factory=lambda: defaultdict(int))

    def next_order(self, platform: Platform) -> int:
        self.orders[platform] += 1
        return self.orders[platform]

    def next_subscription(self, platform: Platform) -> int:
        self.subscriptions[platform] += 1
        return self.subscriptions[platform]


def _order_record(
    rng: np.random.Generator,
    platform: Platform,
    number: int,
    customer_id: str,
    planned: behaviour.PlannedOrder,
    as_of: datetime,
    subscription: str | None,
) -> OrderRecord:
    lines = tuple(
        OrderLineRecord(
            quantity=quantity,
            amount=quantity * price,
            unit_price=price,
            sku=product.sku,
            title=product.title,
            product_external_id=product.sku,
        )
        for product, quantity, price in planned.items
    )
    subtotal = sum(line.amount for line in lines)
    shipping = 0 if planned.subscription or subtotal >= FREE_SHIPPING_FROM else SHIPPING_FEE
    at = planned.ordered_at
    status, refunded, updated = OrderStatus.FULFILLED, 0, at + timedelta(days=2)
    draw = rng.random()
    if draw < 0.025:
        status, updated = OrderStatus.CANCELLED, at + timedelta(hours=6)
    elif draw < 0.035:
        status, updated = OrderStatus.REFUNDED, at + timedelta(days=12)
    elif draw < 0.042 and len(lines) > 1:
        refunded, updated = lines[-1].amount, at + timedelta(days=12)
    elif as_of - at < timedelta(days=3):
        status, updated = OrderStatus.OPEN, at
    return OrderRecord(
        platform=platform.value,
        external_id=order_id(platform, number, at),
        customer_external_id=customer_id,
        ordered_at=at,
        total_amount=subtotal + shipping,
        status=status,
        refunded_amount=refunded,
        lines=lines,
        subscription_external_id=subscription,
        source_updated_at=min(updated, as_of),
    )


def _customer(
    rng: np.random.Generator,
    counters: _Counters,
    into: _MallRecords,
    platform: Platform,
    number: int,
    acquired_at: datetime,
    as_of: datetime,
) -> None:
    person = make_person(rng, platform, number, acquired_at)
    into.customers.append(
        CustomerRecord(
            platform=platform.value,
            external_id=person.external_id,
            display_name=person.display_name,
            email=person.email,
            phone=person.phone,
            birth_date=person.birth_date,
            created_at=acquired_at,
            source_updated_at=acquired_at,
        )
    )
    subscription: str | None = None
    if rng.random() < SUBSCRIBER_SHARE[platform]:
        plan, planned = behaviour.subscriber(rng, acquired_at, as_of)
        subscription = subscription_id(platform, counters.next_subscription(platform), acquired_at)
        into.subscriptions.append(
            SubscriptionRecord(
                platform=platform.value,
                external_id=subscription,
                customer_external_id=person.external_id,
                started_at=plan.started_at,
                status=plan.status,
                interval_days=plan.interval_days,
                product_title=plan.product.title,
                cancelled_at=plan.cancelled_at,
                next_delivery_at=plan.next_delivery_at,
                source_updated_at=plan.events[-1][1],
            )
        )
        into.events.extend(
            SubscriptionEventRecord(
                platform=platform.value,
                subscription_external_id=subscription,
                kind=kind,
                occurred_at=at,
                event_id=f"{subscription}#{index}",
                reason=reason,
            )
            for index, (kind, at, reason) in enumerate(plan.events, start=1)
        )
    else:
        planned = behaviour.shopper_orders(rng, acquired_at, as_of, loyal=LOYALTY[platform])
    for order in planned:
        into.orders.append(
            _order_record(
                rng,
                platform,
                counters.next_order(platform),
                person.external_id,
                order,
                as_of,
                subscription if order.subscription else None,
            )
        )


def generate_shop(seed: int, *, customers: int, as_of: datetime) -> Iterator[DemoBatch]:
    """The demo shop's records, a few hundred customers per batch, one batch per mall."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    rng = np.random.Generator(np.random.PCG64(seed))
    counters = _Counters()
    start = as_of - timedelta(days=HISTORY_DAYS)
    for first in range(0, customers, BLOCK):
        size = min(BLOCK, customers - first)
        malls = rng.choice(len(MALLS), size=size, p=MALL_SHARES)
        # Acquisition density grows linearly over the two years (inverse CDF of 0.5 + x).
        fractions = (np.sqrt(1 + 8 * rng.random(size)) - 1) / 2
        by_mall: dict[Platform, _MallRecords] = defaultdict(_MallRecords)
        for offset in range(size):
            platform = MALLS[int(malls[offset])]
            moment = start + timedelta(days=float(fractions[offset]) * HISTORY_DAYS)
            acquired_at = behaviour.local_time(rng, moment, as_of)
            number = first + offset + 1
            _customer(rng, counters, by_mall[platform], platform, number, acquired_at, as_of)
        for platform in MALLS:
            if platform in by_mall:
                yield DemoBatch(platform, by_mall[platform].batch())
