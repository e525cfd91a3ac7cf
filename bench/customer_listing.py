"""Customer listings on a million customers: by risk with band and sign filters, deep pages
of other sorts, counts and the risk distribution, beside the plain page.

    .venv/bin/python -m bench.customer_listing [DATABASE_URL] [--repeat 7]
        [--customers 1000000] [--orders 10000000] [--seed 1]

Reads the shop `bench/recompute.py` seeds and scores (run that first; DATABASE_URL defaults
the same way, to KIZUKI_BENCH_DATABASE_URL, then to `kizuki_bench_recompute` on 127.0.0.1).
Each listing is `list_customers` and `count_customers` as `customers(…)` calls them, 100 per
page; deep pages start after a cursor taken from the listing's own order. The baseline, in the
same run, is the plainest page there is: the first 100 customers by creation, unfiltered.
The tables are vacuumed and analysed first, as autovacuum would have left them. Nothing is
written.
"""

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import select as sa_select
from sqlmodel import select

from bench.database import BenchSetupError, check_postgres, vacuum
from bench.recompute_data import shop_name
from domain.customer.models import Customer
from domain.customer.service import (
    CUSTOMER_SORTS,
    CustomerSort,
    RiskFilter,
    count_customers,
    list_customers,
)
from domain.db import AsyncSession, create_engine, session_factory
from domain.ids import ShopId
from domain.ingest.statements import fetch_all, table_of
from domain.pagination import PageRequest, Position
from domain.risk.bands import Band
from domain.risk.distribution import risk_distribution
from domain.risk.models import RiskScore
from domain.risk.signs import Sign
from domain.shop.models import Shop

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1/kizuki_bench_recompute"
PAGE = 100


@dataclass(frozen=True, slots=True)
class Listing:
    name: str
    sort: CustomerSort = CustomerSort.RISK
    descending: bool = True
    bands: frozenset[Band] = field(default_factory=frozenset)
    signs: frozenset[Sign] = field(default_factory=frozenset)
    # Start after the customer at this position of the listing's order.
    after: int | None = None
    count: bool = True


LISTINGS = (
    Listing("by RISK, highest first"),
    Listing("by RISK, lowest first", descending=False, count=False),
    Listing("by RISK, highest first, after the 20,000th", after=20_000, count=False),
    Listing("by RISK, highest first, after the 200,000th", after=200_000, count=False),
    Listing("by RISK, riskBands: [CRITICAL]", bands=frozenset({Band.CRITICAL})),
    Listing("by RISK, riskBands: [HIGH]", bands=frozenset({Band.HIGH})),
    Listing(
        "by RISK, riskBands: [MEDIUM], lowest first",
        descending=False,
        bands=frozenset({Band.MEDIUM}),
    ),
    Listing(
        "by RISK, riskBands: [HIGH, MEDIUM], signs: [BASKET]",
        bands=frozenset({Band.HIGH, Band.MEDIUM}),
        signs=frozenset({Sign.BASKET}),
    ),
    Listing("by RISK, riskBands: [LOW, HIGH]", bands=frozenset({Band.LOW, Band.HIGH})),
    Listing("by ORDER_COUNT, lowest first", CustomerSort.ORDER_COUNT, False, count=False),
    Listing(
        "by ORDER_COUNT, lowest first, after the 50,000th",
        CustomerSort.ORDER_COUNT,
        False,
        after=50_000,
        count=False,
    ),
    Listing(
        "by TOTAL_SPENT, lowest first, after the 150,000th",
        CustomerSort.TOTAL_SPENT,
        False,
        after=150_000,
        count=False,
    ),
    Listing("by LAST_ORDER_AT, newest first", CustomerSort.LAST_ORDER_AT, count=False),
    Listing(
        "by LAST_ORDER_AT, newest first, after the 300,000th",
        CustomerSort.LAST_ORDER_AT,
        after=300_000,
        count=False,
    ),
    Listing("by LAST_ORDER_AT, oldest first", CustomerSort.LAST_ORDER_AT, False, count=False),
    Listing(
        "by ORDER_COUNT, riskBands: [HIGH]",
        CustomerSort.ORDER_COUNT,
        bands=frozenset({Band.HIGH}),
    ),
)
BASELINE = Listing("by ORDER_COUNT, no filter (baseline)", CustomerSort.ORDER_COUNT)


async def cursor_at(
    session: AsyncSession, shop_id: ShopId, listing: Listing, position: int
) -> Position:
    """The cursor of the row at `position` (0-based) of `listing`'s order, filters aside."""
    value: ColumnElement[Any]
    key: ColumnElement[Any]
    if listing.sort is CustomerSort.RISK:
        score = table_of(RiskScore).c
        value, key, owner = score.probability, score.customer_id, score.shop_id
    else:
        value, key = CUSTOMER_SORTS[listing.sort].column, table_of(Customer).c.id
        owner = table_of(Customer).c.shop_id
    order = (value.desc(), key.desc()) if listing.descending else (value.asc(), key.asc())
    where = (owner == shop_id, value.is_not(None))
    statement = sa_select(value, key).where(*where).order_by(*order).offset(position).limit(1)
    ((found, row_id),) = await fetch_all(session, statement)
    return Position(found, row_id)


async def measure(
    session: AsyncSession, shop_id: ShopId, listing: Listing, repeat: int
) -> tuple[float, int, float | None, int | None]:
    """Median page time (ms), rows on the page, count time (ms) and the count."""
    cursor = (
        None if listing.after is None else await cursor_at(session, shop_id, listing, listing.after)
    )
    request = PageRequest(size=PAGE, descending=listing.descending, cursor=cursor)
    risk = RiskFilter(listing.bands, listing.signs)
    seconds: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        page = await list_customers(session, shop_id, request, sort=listing.sort, risk=risk)
        seconds.append(time.perf_counter() - started)
    if not listing.count:
        return statistics.median(seconds) * 1000, len(page.items), None, None
    started = time.perf_counter()
    total = await count_customers(session, shop_id, risk=risk)
    counted = (time.perf_counter() - started) * 1000
    return statistics.median(seconds) * 1000, len(page.items), counted, total


async def run(url: str, name: str, repeat: int) -> None:
    engine = create_engine(url)
    try:
        await vacuum(engine, ("risk_score", "customer", "risk_model"))
        async with session_factory(engine)() as session:
            found = await session.exec(select(Shop.id).where(Shop.name == name))
            shop = found.first()
            if shop is None:
                raise SystemExit("no bench shop here: run `python -m bench.recompute` first")
            shop_id = ShopId(shop)
            base, _, _, _ = await measure(session, shop_id, BASELINE, repeat)
            print(f"{'listing (100 per page)':<52}{'page':>10}{'÷ base':>9}{'count':>11}  rows")  # noqa: T201
            print(f"{BASELINE.name:<52}{base:8.1f} ms{1.0:9.1f}")  # noqa: T201
            for listing in LISTINGS:
                page, rows, counted, total = await measure(session, shop_id, listing, repeat)
                counts = "" if counted is None else f"{counted:8.0f} ms  {total:,}"
                print(f"{listing.name:<52}{page:8.1f} ms{page / base:9.1f}{counts:>11}")  # noqa: T201
                if rows != PAGE:
                    raise SystemExit(f"{listing.name}: {rows} rows, not a full page")
            seconds = []
            for _ in range(3):
                started = time.perf_counter()
                await risk_distribution(session, shop_id, buckets=20)
                seconds.append(time.perf_counter() - started)
            chart = statistics.median(seconds) * 1000
            name = "riskDistribution(buckets: 20), median of 3"
            print(f"{name:<52}{chart:8.1f} ms{chart / base:9.1f}")  # noqa: T201
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "database_url", nargs="?", default=os.environ.get("KIZUKI_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--repeat", type=int, default=7, help="pages timed per listing")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        check_postgres(args.database_url)
    except BenchSetupError as error:
        parser.error(str(error))
    name = shop_name(args.customers, args.orders, args.seed)
    asyncio.run(run(args.database_url, name, args.repeat))


if __name__ == "__main__":
    main()
