"""Seeded order history for the fake shop: realistic enough to sync, fast enough for 100k."""

import random
from datetime import timedelta
from decimal import Decimal

from tests.fakes.shopify.store import ShopifyStore


def generate(
    store: ShopifyStore,
    *,
    orders: int,
    customers: int | None = None,
    seed: int = 7,
    days: int = 365,
    guest_share: float = 0.05,
) -> None:
    """Seeded orders with 1 to 3 lines each, spread over the last `days` days; fast for 100k."""
    rng = random.Random(seed)
    now = store.clock()
    count = customers or max(1, orders // 3)
    first_at = now - timedelta(days=days)
    people = [
        store.add_customer(
            email=f"buyer{index}@example.jp",
            phone=f"090{index:08d}",
            created_at=first_at + timedelta(seconds=rng.uniform(0, days * 86400 * 0.5)),
        )
        for index in range(count)
    ]
    prices = [Decimal(value) for value in (980, 1280, 1980, 2480, 3280, 5400)]
    stamps = sorted(rng.uniform(0, days * 86400) for _ in range(orders))
    for offset in stamps:
        at = first_at + timedelta(seconds=offset)
        guest = rng.random() < guest_share
        buyer = None if guest else people[rng.randrange(count)]
        lines = [
            (f"SKU-{rng.randrange(40)}", rng.randint(1, 3), rng.choice(prices))
            for _ in range(rng.randint(1, 3))
        ]
        email = f"guest{rng.randrange(orders)}@example.jp" if guest else None
        store.add_order(buyer, created_at=at, lines=lines, email=email)
