import csv
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.order.models import OrderStatus
from domain.risk.days import local_day
from domain.risk.export import export_scores
from domain.risk.loading import ShopHistory, load_history
from domain.risk.scoring import score_customers
from domain.risk.segments import MIN_SEGMENT_CUSTOMERS, assign_segments
from domain.risk.service import recompute_risk, rescore_customers
from domain.risk.state import load_state
from tests.domain.risk.segmented import (
    RETURN_DAYS,
    add_all,
    add_product,
    new_customer,
    order_of,
    segmented_shop,
)
from tests.domain.risk.shops import AS_OF, current_scores, stored_now

UTC_ZONE = ZoneInfo("UTC")
TOKYO = ZoneInfo("Asia/Tokyo")


def _interval(reasons: list[dict[str, Any]]) -> dict[str, Any]:
    return next(reason for reason in reasons if reason["sign"] == "interval")


def _index(history: ShopHistory, customer_id: uuid.UUID) -> int:
    return [history.customer_id(i) for i in range(history.size)].index(customer_id)


async def test_first_buyers_of_a_slow_product_are_measured_against_its_own_pace(
    session: AsyncSession,
) -> None:
    shop = await segmented_shop(session)

    run = await recompute_risk(session, ShopId(shop.shop.id), as_of=AS_OF)

    scores = await current_scores(session, shop.shop)
    fast, slow = (scores[shop.probes[name].id] for name in ("A", "B"))
    fast_usual = _interval(fast.reasons)["evidence"]["usual_interval"]
    slow_usual = _interval(slow.reasons)["evidence"]["usual_interval"]
    assert abs(fast_usual - RETURN_DAYS["A"]) <= 3
    assert abs(slow_usual - RETURN_DAYS["B"]) <= 3
    # Both bought once, the same basket, the same number of days ago: only the first product
    # differs. Thirty days is late for product A and early for product B.
    assert fast.probability is not None
    assert slow.probability is not None
    assert fast.probability > slow.probability + 0.1
    assert run.fitted


async def test_without_segments_the_two_first_buyers_look_alike(session: AsyncSession) -> None:
    shop = await segmented_shop(session)
    history = await load_history(session, ShopId(shop.shop.id), UTC_ZONE, before=AS_OF)
    day = local_day(AS_OF, UTC_ZONE)
    codes = assign_segments(history.first_products).codes
    probes = [_index(history, shop.probes[name].id) for name in ("A", "B")]

    plain = score_customers(history.orders, day, 90)
    segmented = score_customers(history.orders, day, 90, segment=codes)

    assert codes[probes[0]] != codes[probes[1]]
    assert min(codes[probes]) >= 0
    usual = plain.evidence.usual_interval[probes]
    assert usual[0] == usual[1]
    assert plain.p_no_purchase[probes[0]] == plain.p_no_purchase[probes[1]]
    assert segmented.p_no_purchase[probes[0]] > segmented.p_no_purchase[probes[1]] + 0.1


async def test_the_export_uses_segments_and_repeats_itself(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, tmp_path: Path
) -> None:
    shop = await segmented_shop(session)
    await session.commit()
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"

    for out in (first, second):
        await export_scores(sessions, ShopId(shop.shop.id), as_of=AS_OF, out=out, horizon_days=90)

    assert first.read_bytes() == second.read_bytes()
    with first.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    # Rows come in customer UUID order; these customers have no identity to name them by.
    history = await load_history(session, ShopId(shop.shop.id), UTC_ZONE, before=AS_OF)
    fast, slow = (
        float(rows[_index(history, shop.probes[name].id)]["probability"]) for name in ("A", "B")
    )
    assert fast > slow + 0.1


async def test_the_same_data_give_the_same_codes_and_scores(session: AsyncSession) -> None:
    shop = await segmented_shop(session)
    shop_id = ShopId(shop.shop.id)

    loads = [await load_history(session, shop_id, TOKYO, before=AS_OF) for _ in range(2)]
    await recompute_risk(session, shop_id, as_of=AS_OF)
    once = await stored_now(session, shop.shop)
    await recompute_risk(session, shop_id, as_of=AS_OF)

    left, right = (assign_segments(history.first_products) for history in loads)
    np.testing.assert_array_equal(left.codes, right.codes)
    assert left.table == right.table == {("shopify", "sku-A"): 0, ("shopify", "sku-B"): 1}
    assert await stored_now(session, shop.shop) == once


async def test_codes_read_nothing_from_the_cut_off_on(session: AsyncSession) -> None:
    shop = await segmented_shop(session, per_product=40)
    shop_id = ShopId(shop.shop.id)
    rare = await add_product(session, shop.shop, shop.connection, "sku-C")
    # Product C: too few first buyers before the cut-off, enough counting those after it.
    before = MIN_SEGMENT_CUSTOMERS - 5
    buyers = [new_customer(shop.shop, f"C{n}") for n in range(MIN_SEGMENT_CUSTOMERS + 5)]
    orders = [
        order_of(buyer, shop.connection, AS_OF - timedelta(days=60 if n < before else -2), [rare])
        for n, buyer in enumerate(buyers)
    ]
    # Cancelled before the cut-off, product A after it: no first product as of the cut-off.
    late = new_customer(shop.shop, "late")
    product_a = shop.products["A"]
    orders.append(
        order_of(
            late,
            shop.connection,
            AS_OF - timedelta(days=10),
            [product_a],
            status=OrderStatus.CANCELLED,
        )
    )
    orders.append(order_of(late, shop.connection, AS_OF + timedelta(days=1), [product_a]))
    # A probe's later order names product C first: its first product stays A.
    orders.append(order_of(shop.probes["A"], shop.connection, AS_OF + timedelta(hours=1), [rare]))
    await add_all(session, [*buyers, late], orders)

    then = await load_history(session, shop_id, UTC_ZONE, before=AS_OF)
    later = await load_history(session, shop_id, UTC_ZONE, before=AS_OF + timedelta(days=5))

    now_segments, later_segments = (assign_segments(h.first_products) for h in (then, later))
    assert ("shopify", "sku-C") not in now_segments.table
    assert ("shopify", "sku-C") in later_segments.table
    codes = dict(zip(then.customer_ids.tolist(), now_segments.codes.tolist(), strict=True))
    assert codes[late.id.bytes] == -1
    assert codes[shop.probes["A"].id.bytes] == now_segments.table["shopify", "sku-A"]
    assert all(codes[buyer.id.bytes] == -1 for buyer in buyers[:before])


async def test_the_first_line_naming_a_product_on_the_first_purchase_counts(
    session: AsyncSession,
) -> None:
    shop = await segmented_shop(session, per_product=40)
    customer = new_customer(shop.shop, "mixed")
    a, b = shop.products["A"], shop.products["B"]
    day = timedelta(days=1)
    orders = [
        order_of(customer, shop.connection, AS_OF - 50 * day, [b], status=OrderStatus.CANCELLED),
        order_of(customer, shop.connection, AS_OF - 40 * day, [None, a, b]),
        order_of(customer, shop.connection, AS_OF - 30 * day, [b]),
    ]
    await add_all(session, [customer], orders)

    history = await load_history(session, ShopId(shop.shop.id), UTC_ZONE, before=AS_OF)

    first = history.first_products
    assert first.keys[first.key[_index(history, customer.id)]] == ("shopify", "sku-A")


async def test_rescoring_uses_the_codes_of_the_last_full_fit(session: AsyncSession) -> None:
    shop = await segmented_shop(session)
    shop_id = ShopId(shop.shop.id)
    await recompute_risk(session, shop_id, as_of=AS_OF)
    full = await stored_now(session, shop.shop)
    state = await load_state(session, shop_id)
    assert state is not None
    assert state.segments == {("shopify", "sku-A"): 0, ("shopify", "sku-B"): 1}
    # A first-time buyer of product B after the fit: B's pace, through the stored table.
    newcomer = new_customer(shop.shop, "newcomer")
    later = AS_OF + timedelta(hours=3)
    at = AS_OF + timedelta(hours=1)
    await add_all(
        session, [newcomer], [order_of(newcomer, shop.connection, at, [shop.products["B"]])]
    )

    untouched = await rescore_customers(
        session, shop_id, [probe.id for probe in shop.probes.values()], as_of=AS_OF
    )
    unchanged = await stored_now(session, shop.shop)
    run = await rescore_customers(session, shop_id, [newcomer.id], as_of=later)

    assert not untouched.fitted
    assert unchanged == full
    assert (run.fitted, run.scored) == (False, 1)
    score = (await current_scores(session, shop.shop))[newcomer.id]
    usual = _interval(score.reasons)["evidence"]["usual_interval"]
    assert abs(usual - RETURN_DAYS["B"]) <= 3
