"""Mall sync benchmark: orders with lines from the fake Shopify over HTTP into PostgreSQL.

    .venv/bin/python -m bench.ingest [--orders 100000] [--database-url URL] [--seed 7]

URL defaults to KIZUKI_BENCH_DATABASE_URL, then to the `kizuki_bench_ingest` database on
127.0.0.1 (created and migrated if needed; use a scratch database). One run:

1. starts the fake Shopify (`tests/fakes/shopify`) in its own OS process, as a remote mall
   is: uvicorn on loopback, the seeded shop generated and its responses warmed. Its cost
   bucket restores fast enough never to throttle (`--restore-rate`), so what is measured is
   Kizuki's path, not Shopify's rate limit;
2. baseline, in a fresh child process: fetches every page through the Shopify platform (no
   database: the fetch rate alone), then COPYs the rows ingest would write for those records
   (customer, customer_identity, product, order, order_line) into a fresh shop with no
   lookups, no versions, no linking: the store rate's limit;
3. end to end, in another fresh child process: a new shop and a Shopify connection made
   through `domain.connection` (credentials encrypted, base URL at the fake), then the arq
   job `sync_connection` with a real `WorkerContext` until the backfill is complete, then a
   check that the shop holds exactly the fetched orders and lines.

It prints orders/s of each, the ratio end to end / baseline COPY, pages, requests, throttle
waits, peak RSS of each child, and the CPU seconds spent by the bench process, the fake and
PostgreSQL's backends during the timed part. The shops made are deleted at the end.
"""

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.backends import backend_pids, backends_cpu
from bench.database import BenchSetupError, check_postgres, ensure_database, migrate
from bench.ingest_rows import ORDERED, baseline_rows, columns_of
from bench.mall import SHOP_DOMAIN, FakeMall, account, serve_fake
from bench.memory import peak_rss_mib
from bench.servers import cpu_seconds
from domain.connection.accounts import check_credentials, connect_account
from domain.connection.models import Connection
from domain.credentials import CredentialCipher
from domain.db import AsyncSession, create_engine, session_factory
from domain.ids import ConnectionId, ShopId
from domain.jobs import JobRequest
from domain.platforms import CustomerRecord, OrderRecord, PlatformAccount, StorePlatform
from domain.settings import Settings
from domain.shop.service import create_shop
from domain.tables import metadata
from integrations import build_platforms
from kizuki.events import InProcessEventBus
from kizuki.process import run as run_async
from kizuki.process import tune_garbage_collector
from workers.context import WorkerContext
from workers.sync import sync_connection

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1/kizuki_bench_ingest"
GOAL_ORDERS_PER_S = 5_000.0

Result = dict[str, Any]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _table(name: str) -> Table:
    return metadata.tables[name]


# --- what both measurements share -------------------------------------------------------------


async def new_shop(session: AsyncSession, label: str) -> ShopId:
    shop = await create_shop(session, f"bench ingest {label} {uuid.uuid4().hex[:8]}")
    return ShopId(shop.id)


class CpuMeter:
    """CPU seconds of this process, the fake's and this process's PostgreSQL backends."""

    def __init__(self, database_url: str, fake_pid: int) -> None:
        self.database_url = database_url
        self.fake_pid = fake_pid
        self.backends: set[int] = set()
        self.start: tuple[float, float, dict[int, float]] = (0.0, 0.0, {})

    async def begin(self) -> None:
        self.backends = await backend_pids(self.database_url, os.getpid())
        self.start = (time.process_time(), cpu_seconds(self.fake_pid) or 0.0, self._db())

    def _db(self) -> dict[int, float]:
        return backends_cpu(self.backends)

    def end(self) -> Result:
        bench, fake, db = self.start
        now = self._db()
        return {
            "cpu_bench_s": time.process_time() - bench,
            "cpu_fake_s": (cpu_seconds(self.fake_pid) or 0.0) - fake,
            "cpu_db_s": sum(now[pid] - db.get(pid, 0.0) for pid in now),
        }


async def open_pool(sessions: async_sessionmaker[AsyncSession], size: int) -> None:
    """Open `size` pooled connections now, so their backends can be watched from the start."""

    async def one() -> None:
        async with sessions() as session:
            await (await session.connection()).execute(text("SELECT pg_sleep(0.05)"))

    await asyncio.gather(*(one() for _ in range(size)))


# --- baseline: fetch every page, then COPY the rows ingest would write ------------------------


async def fetch_all_pages(platform: StorePlatform, base_url: str) -> Result:
    """Every page of a backfill through the platform, kept in memory: records and costs."""
    credentials, url = account(base_url)
    target = PlatformAccount(ConnectionId(uuid.uuid4()), SHOP_DOMAIN, credentials, url)
    customers: list[CustomerRecord] = []
    orders: list[OrderRecord] = []
    requests = pages = 0
    started = time.perf_counter()
    async for page in platform.sync_pages(target, {}, None):
        customers.extend(page.records.customers)
        orders.extend(page.records.orders)
        requests += page.stats.requests
        pages += 1
    seconds = time.perf_counter() - started
    return {
        "customers": customers,
        "orders": orders,
        "pages": pages,
        "requests": requests,
        "fetch_s": seconds,
    }


async def copy_baseline(
    sessions: async_sessionmaker[AsyncSession],
    customers: Sequence[CustomerRecord],
    orders: Sequence[OrderRecord],
) -> Result:
    """COPY the rows ingest would write for these records into a new shop (timed)."""
    async with sessions() as session:
        shop_id = await new_shop(session, "baseline")
        connection = Connection(
            shop_id=shop_id, platform="shopify", name="bench", external_account_id="baseline"
        )
        session.add(connection)
        await session.commit()
        connection_id = connection.id
    started = time.perf_counter()
    rows = baseline_rows(shop_id, connection_id, customers, orders, datetime.now(UTC))
    build_seconds = time.perf_counter() - started
    async with sessions() as session:
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        assert raw is not None
        started = time.perf_counter()
        for name in ORDERED:
            await raw.copy_records_to_table(
                name, records=rows[name], columns=list(columns_of(name))
            )
        await session.commit()
        copy_seconds = time.perf_counter() - started
    return {
        "shop_id": str(shop_id),
        "lines": len(rows["order_line"]),
        "customers": len(rows["customer"]),
        "build_s": build_seconds,
        "copy_s": copy_seconds,
        "rows": sum(len(table) for table in rows.values()),
    }


async def run_baseline(database_url: str, base_url: str) -> Result:
    """Fetch every page (timed), then COPY the rows (timed), in this process."""
    engine = create_engine(database_url, pool_size=2)
    async with httpx.AsyncClient(timeout=30.0) as http:
        fetched = await fetch_all_pages(build_platforms(http)["shopify"], base_url)
    customers, orders = fetched.pop("customers"), fetched.pop("orders")
    copied = await copy_baseline(session_factory(engine), customers, orders)
    await engine.dispose()
    return {**fetched, **copied, "orders": len(orders), "peak_rss_mib": peak_rss_mib()}


# --- end to end: the sync job --------------------------------------------------------------


class CountingJobQueue:
    """Keeps the follow-up sync jobs; counts the rest (rescoring runs elsewhere)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.follow_ups: list[JobRequest] = []

    async def send(self, requests: list[JobRequest]) -> None:
        for request in requests:
            self.counts[request.job.value] += 1
            if request.job.value == "sync_connection":
                self.follow_ups.append(request)


async def sync_end_to_end(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    platforms: Mapping[str, StorePlatform],
    base_url: str,
    *,
    meter: "CpuMeter | None" = None,
) -> Result:
    """Connect a new shop to the fake through `domain.connection`, then run the arq job
    `sync_connection` (and the follow-ups it enqueues) until the backfill is complete."""
    queue = CountingJobQueue()
    cipher = CredentialCipher(settings.secret_key.get_secret_value())
    credentials, url = account(base_url)
    checked = await check_credentials(platforms["shopify"], credentials, url)
    async with sessions() as session:
        shop_id = await new_shop(session, "sync")
        connection = await connect_account(
            session, shop_id, checked, cipher=cipher, actor="bench:ingest"
        )
        await session.commit()
    ctx = WorkerContext(
        settings=settings,
        sessions=sessions,
        events=InProcessEventBus(),
        job_queue=queue,
        platforms=platforms,
        job_id=f"sync_connection:{connection.id}",
        job_try=1,
    )
    if meter is not None:
        await meter.begin()
    started = time.perf_counter()
    jobs = 1
    await sync_connection(ctx, shop_id=str(shop_id), connection_id=str(connection.id))
    while queue.follow_ups:
        # The job's time budget ran out: its follow-up continues from the cursor.
        follow = queue.follow_ups.pop(0)
        jobs += 1
        await sync_connection(ctx, **{k: str(v) for k, v in follow.kwargs.items() if v})
    seconds = time.perf_counter() - started
    cpu = meter.end() if meter is not None else {}
    checked_state = await _check(sessions, shop_id, connection.id)
    return {
        **checked_state,
        **cpu,
        "shop_id": str(shop_id),
        "seconds": seconds,
        "jobs": jobs,
        "rescore_jobs": queue.counts.get("rescore_customers", 0),
    }


async def run_sync_job(database_url: str, base_url: str, fake_pid: int) -> Result:
    """The end-to-end sync in this process, with the worker's engine and HTTP client."""
    settings = Settings(database_url=database_url)
    engine = create_engine(database_url, pool_size=settings.pool_size)
    sessions = session_factory(engine)
    async with httpx.AsyncClient(timeout=30.0) as http:
        await open_pool(sessions, 3)
        meter = CpuMeter(database_url, fake_pid)
        result = await sync_end_to_end(
            settings, sessions, build_platforms(http), base_url, meter=meter
        )
    await engine.dispose()
    return {**result, "peak_rss_mib": peak_rss_mib()}


async def _check(
    sessions: async_sessionmaker[AsyncSession], shop_id: ShopId, connection_id: uuid.UUID
) -> Result:
    """What the shop holds after the sync, and what its runs counted."""
    async with sessions() as session:
        db = await session.connection()
        stored = {}
        for name in ("order", "order_line", "customer"):
            table = _table(name)
            statement = select(func.count()).where(table.c.shop_id == shop_id)
            stored[name] = (await db.execute(statement)).scalar_one()
        connection = await session.get(Connection, (shop_id, connection_id))
        run_table = _table("sync_run")
        runs = (
            await db.execute(
                select(run_table.c.status, run_table.c.counts).where(run_table.c.shop_id == shop_id)
            )
        ).all()
    orders, lines, customers = stored["order"], stored["order_line"], stored["customer"]
    assert connection is not None
    counts: Counter[str] = Counter()
    for _, run_counts in runs:
        counts.update({key: int(value) for key, value in run_counts.items()})
    return {
        "orders": orders,
        "lines": lines,
        "customers": customers,
        "backfilled": connection.backfilled_at is not None,
        "run_status": sorted({str(status) for status, _ in runs}),
        "pages": counts["pages"],
        "requests": counts["requests"],
        "throttle_waits": counts["throttle_waits"],
        "throttle_wait_ms": counts["throttle_wait_ms"],
        "orders_inserted": counts["orders_inserted"],
        "rejected": counts["rejected"],
    }


async def forget_shops(database_url: str, shop_ids: Sequence[str]) -> None:
    """Delete the bench's shops and every row of theirs, then VACUUM ANALYZE: the next sync
    meets the tables (and planner statistics) as they were before, not another shop's rows."""
    engine = create_engine(database_url, pool_size=1)
    async with engine.begin() as connection:
        for raw in shop_ids:
            shop_id = uuid.UUID(raw)
            for table in reversed(metadata.sorted_tables):
                if "shop_id" in table.c:
                    await connection.execute(delete(table).where(table.c.shop_id == shop_id))
            shop = metadata.tables["shop"]
            await connection.execute(delete(shop).where(shop.c.id == shop_id))
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"VACUUM ANALYZE {', '.join(_VACUUMED)}"))
    await engine.dispose()


_VACUUMED = ("customer", "customer_identity", "product", '"order"', "order_line", "connection")


# --- the run ---------------------------------------------------------------------------------


def child(kind: str, args: argparse.Namespace, base_url: str, fake_pid: int) -> Result:
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile and kind == "sync" else []
    command = [sys.executable, *profile, "-m", "bench.ingest", "--child", kind]
    command += ["--base-url", base_url]
    command += ["--database-url", args.database_url, "--fake-pid", str(fake_pid)]
    completed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result: Result = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def report(args: argparse.Namespace, base: Result, sync: Result, load_before: str) -> None:
    orders = sync["orders"]
    e2e = orders / sync["seconds"]
    fetch = base["orders"] / base["fetch_s"]
    copy = base["orders"] / base["copy_s"]
    out = [
        f"command   python -m bench.ingest {shlex.join(sys.argv[1:])}",
        f"load avg  before {load_before}, after {load_average()} (2 cores)",
        f"dataset   {base['orders']:,} orders, {base['lines']:,} lines, "
        f"{base['customers']:,} customers (incl. guests) in {base['pages']} pages",
        "",
        f"{'path':<32}{'seconds':>9}{'orders/s':>11}{'peak RSS':>10}",
        f"{'end to end (sync_connection)':<32}{sync['seconds']:>9.2f}{e2e:>11,.0f}"
        f"{sync['peak_rss_mib']:>7.0f} MiB",
        f"{'baseline: bulk COPY of the rows':<32}{base['copy_s']:>9.2f}{copy:>11,.0f}"
        f"{base['peak_rss_mib']:>7.0f} MiB",
        f"{'fetch + map only (no database)':<32}{base['fetch_s']:>9.2f}{fetch:>11,.0f}",
        "",
        f"ratio     end to end / bulk COPY = {e2e / copy:.1%}; goal >= "
        f"{GOAL_ORDERS_PER_S:,.0f} orders/s end to end: "
        f"{'met' if e2e >= GOAL_ORDERS_PER_S else 'MISSED'}",
        f"sync      {sync['jobs']} job(s), {sync['pages']} pages, {sync['requests']} requests, "
        f"{sync['throttle_waits']} throttle waits ({sync['throttle_wait_ms']} ms), "
        f"{sync['rescore_jobs']} rescoring jobs requested, {sync['rejected']} rejected",
        f"CPU       during the sync: bench process {sync['cpu_bench_s']:.1f} s, fake Shopify "
        f"{sync['cpu_fake_s']:.1f} s, PostgreSQL backends {sync['cpu_db_s']:.1f} s",
        f"check     stored {sync['orders']:,} orders, {sync['lines']:,} lines, "
        f"{sync['customers']:,} customers; backfill complete: {sync['backfilled']}; "
        f"runs {', '.join(sync['run_status'])}",
    ]
    print("\n".join(out), flush=True)  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("KIZUKI_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--restore-rate", type=float, default=1e9, help="fake bucket points/s")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="the fake waits this long per answer"
    )
    parser.add_argument(
        "--profile", metavar="PATH", help="write a cProfile of the sync process to PATH"
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["baseline", "sync"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--fake-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        asyncio.run(serve_fake(args.orders, args.seed, args.restore_rate, args.latency_ms))
        return
    if args.child == "baseline":
        print(json.dumps(asyncio.run(run_baseline(args.database_url, args.base_url))))  # noqa: T201
        return
    if args.child == "sync":
        # The process as `kizuki worker` sets it up: collector and event loop.
        tune_garbage_collector()
        result = run_async(run_sync_job(args.database_url, args.base_url, args.fake_pid))
        print(json.dumps(result))  # noqa: T201
        return
    try:
        check_postgres(args.database_url)
        asyncio.run(ensure_database(args.database_url))
    except BenchSetupError as error:
        parser.exit(2, f"bench.ingest: {error}\n")
    migrate(args.database_url)
    load_before = load_average()
    started = time.perf_counter()
    mall = FakeMall(args.orders, args.seed, args.restore_rate, args.latency_ms)
    shops: list[str] = []
    try:
        print(  # noqa: T201
            f"fake Shopify ready at {mall.base_url} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        base = child("baseline", args, mall.base_url, mall.process.pid)
        # The sync starts on tables without the baseline's shop, as a first backfill would.
        asyncio.run(forget_shops(args.database_url, [base["shop_id"]]))
        sync = child("sync", args, mall.base_url, mall.process.pid)
        shops.append(sync["shop_id"])
    finally:
        mall.stop()
        if shops:
            asyncio.run(forget_shops(args.database_url, shops))
    report(args, base, sync, load_before)
    if (sync["orders"], sync["lines"]) != (base["orders"], base["lines"]):
        parser.exit(1, "bench.ingest: the sync did not store exactly the fetched orders\n")


if __name__ == "__main__":
    main()
