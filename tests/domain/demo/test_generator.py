import hashlib
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.demo import generate_shop, write_import_files
from domain.demo.generator import BLOCK
from domain.ingest.contact import normalise_email
from domain.order.models import OrderStatus
from domain.platforms import Platform
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def digest(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    first = write_import_files(tmp_path / "a", 7, customers=600, as_of=AS_OF)
    second = write_import_files(tmp_path / "b", 7, customers=600, as_of=AS_OF)
    write_import_files(tmp_path / "c", 8, customers=600, as_of=AS_OF)
    assert first == second
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    assert sorted(digest(tmp_path / "a")) == [
        "customers.csv",
        "order_lines.csv",
        "orders.csv",
        "subscription_events.csv",
        "subscriptions.csv",
    ]
    assert first.customers == 600
    assert len((tmp_path / "a" / "orders.csv").read_text(encoding="utf-8").splitlines()) == (
        first.orders + 1
    )


def test_the_shop_looks_like_a_japanese_d2c_shop() -> None:
    customers_by_mall: Counter[str] = Counter()
    orders_per_customer: Counter[tuple[str, str]] = Counter()
    statuses: Counter[OrderStatus] = Counter()
    refunds = 0
    event_kinds: Counter[SubscriptionEventKind] = Counter()
    subscription_statuses: Counter[SubscriptionStatus] = Counter()
    first_event: dict[str, SubscriptionEventKind] = {}
    subscriptions = 0
    batches = 0
    for batch in generate_shop(11, customers=4000, as_of=AS_OF):
        batches += 1
        records = batch.records
        assert len(records.customers) <= BLOCK
        mall = batch.platform.value
        customers_by_mall[mall] += len(records.customers)
        for customer in records.customers:
            orders_per_customer[(mall, customer.external_id)] += 0
            assert customer.created_at is not None
            assert AS_OF - timedelta(days=731) <= customer.created_at <= AS_OF
            email = normalise_email(customer.email)
            assert email is not None
            assert email.address.endswith(
                ("example.jp", "example.co.jp", "example.ne.jp", "example.com")
            ) == (mall == "shopify")
            assert email.masked == (mall != "shopify")
            if customer.display_name:
                assert JAPANESE.search(customer.display_name)
        for order in records.orders:
            orders_per_customer[(mall, order.customer_external_id)] += 1
            statuses[order.status] += 1
            refunds += order.refunded_amount > 0
            assert order.ordered_at <= AS_OF
            assert order.currency == "JPY"
            assert order.lines
            assert order.total_amount >= sum(line.amount for line in order.lines) > 0
        for subscription in records.subscriptions:
            subscriptions += 1
            subscription_statuses[subscription.status] += 1
            assert subscription.interval_days in (30, 60)
        for event in records.subscription_events:
            first_event.setdefault(event.subscription_external_id, event.kind)
            event_kinds[event.kind] += 1
    assert batches >= 3 * (4000 // BLOCK)

    total = sum(customers_by_mall.values())
    assert total == 4000
    shares = {mall: count / total for mall, count in customers_by_mall.items()}
    assert shares.keys() == {platform.value for platform in Platform}
    assert 0.38 < shares["shopify"] < 0.52
    assert 0.28 < shares["rakuten"] < 0.42
    assert 0.14 < shares["amazon"] < 0.26
    # Most first-time buyers never come back.
    one_off = sum(1 for count in orders_per_customer.values() if count == 1) / total
    assert 0.55 < one_off < 0.75
    assert max(orders_per_customer.values()) >= 10
    assert all(count >= 1 for count in orders_per_customer.values())
    # Subscribers: every contract starts with an event; skips, pauses and cancellations occur.
    assert 0.08 < subscriptions / total < 0.2
    assert len(first_event) == subscriptions
    assert set(first_event.values()) == {SubscriptionEventKind.STARTED}
    for kind in ("skipped", "paused", "resumed", "postponed", "cancelled"):
        assert event_kinds[SubscriptionEventKind(kind)] > 0
    assert subscription_statuses[SubscriptionStatus.CANCELLED] > 0
    assert subscription_statuses[SubscriptionStatus.ACTIVE] > 0
    # A few orders are cancelled or refunded; most are fulfilled.
    orders = sum(statuses.values())
    assert 0.01 < statuses[OrderStatus.CANCELLED] / orders < 0.05
    assert 0 < statuses[OrderStatus.REFUNDED] / orders < 0.03
    assert refunds > 0
    assert statuses[OrderStatus.FULFILLED] / orders > 0.9


def test_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next(generate_shop(1, customers=1, as_of=datetime(2025, 1, 1)))  # noqa: DTZ001
