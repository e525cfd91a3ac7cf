"""Risk at scale: full recompute and one-customer rescoring, beside lifetimes' BG/NBD.

    .venv/bin/python -m bench.recompute [DATABASE_URL]
        [--customers 1000000] [--orders 10000000] [--seed 1] [--rescores 300]

DATABASE_URL defaults to KIZUKI_BENCH_DATABASE_URL, then to the `kizuki_bench_recompute`
database on 127.0.0.1. The database is created and migrated if needed and seeded once with a
synthetic shop (`bench/recompute_data.py`); later runs reuse it. Each run then:

0. vacuums the tables the last run updated (`risk_score` gets a new version of every row
   each night), as autovacuum would between two nights;
1. recomputes the whole shop in a fresh child process (its peak RSS is the recompute's own),
   as of the night after its last full run, so every run is an ordinary night: current
   scores replaced, a history row for each customer whose score changed;
2. fits lifetimes' BG/NBD on the same history and predicts P(no purchase in the horizon) and
   expected purchases for every customer, in another child;
3. rescoring: adds one order to a random customer and rescores that customer in a unit of
   work of its own, `--rescores` times (the orders are removed afterwards).

It prints the timings, the ratios and whether the targets hold: full recompute ≤ 60 s with
peak RSS ≤ 2 GiB, rescoring p99 ≤ 50 ms. Needs the `bench` extra (lifetimes).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
import warnings
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select

from bench.database import (
    BenchSetupError,
    analyze,
    check_postgres,
    ensure_database,
    migrate,
    vacuum,
)
from bench.memory import peak_rss_mib
from bench.recompute_data import AS_OF, seed_shop
from domain.db import AsyncSession, create_engine, session_factory
from domain.ids import ShopId
from domain.order.models import Order
from domain.risk.days import local_day, shop_zone
from domain.risk.features import snapshot
from domain.risk.history import purchases_before
from domain.risk.loading import load_history
from domain.risk.models import ShopRiskModel
from domain.risk.scoring import fit_risk_model, score_customers
from domain.risk.service import recompute_shop_risk, rescore_customers
from domain.shop.service import require_shop

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1/kizuki_bench_recompute"
# The tables a night's recompute and rescoring update: vacuumed before each run.
NIGHTLY_TABLES = ("customer", '"order"', "risk_score", "risk_score_history")
TARGET_SECONDS = 60.0
TARGET_RSS_MIB = 2048.0
TARGET_P99_MS = 50.0

Result = dict[str, float]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(int(np.ceil(share * len(ordered))) - 1, 0)]


async def next_night(sessions: async_sessionmaker[AsyncSession], shop_id: ShopId) -> datetime:
    """The cut-off of this run: a day after the last full run's, or the data's end."""
    async with sessions() as session:
        row = await session.get(ShopRiskModel, shop_id)
    if row is None or row.fitted_as_of is None:
        return AS_OF
    return row.fitted_as_of + timedelta(days=1)


async def child_recompute(url: str, shop_id: ShopId, as_of: datetime) -> Result:
    engine = create_engine(url, pool_size=1)
    started = time.perf_counter()
    run = await recompute_shop_risk(session_factory(engine), shop_id, as_of=as_of)
    seconds = time.perf_counter() - started
    await engine.dispose()
    return {
        "seconds": seconds,
        "load": run.timings.load,
        "fit": run.timings.fit,
        "score": run.timings.score,
        "write": run.timings.write,
        "customers": run.customers,
        "scored": run.scored,
        "peak_rss_mib": peak_rss_mib(),
    }


async def child_lifetimes(url: str, shop_id: ShopId, as_of: datetime) -> Result:
    """BG/NBD fit + predict on the history the recompute reads, with Kizuki's own for scale."""
    warnings.filterwarnings("ignore")
    from lifetimes import BetaGeoFitter

    engine = create_engine(url, pool_size=1)
    async with session_factory(engine)() as session:
        shop = await require_shop(session, shop_id)
        zone = shop_zone(shop.timezone)
        started = time.perf_counter()
        history = await load_history(session, shop_id, zone, before=as_of)
        loaded = time.perf_counter() - started
    await engine.dispose()
    day, horizon = local_day(as_of, zone), float(shop.horizon_days)
    started = time.perf_counter()
    snap = snapshot(purchases_before(history.orders, day), day)
    buyers = snap.scorable
    x, t_x, age = snap.repeat[buyers], snap.span[buyers], snap.age[buyers]
    summary = time.perf_counter() - started
    started = time.perf_counter()
    model = BetaGeoFitter().fit(x, t_x, age)
    fit = time.perf_counter() - started
    started = time.perf_counter()
    r, alpha = model.params_["r"], model.params_["alpha"]
    alive = np.asarray(model.conditional_probability_alive(x, t_x, age))
    p_none = 1.0 - alive + alive * ((alpha + age) / (alpha + age + horizon)) ** (r + x)
    expected = model.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, age)
    predict = time.perf_counter() - started
    started = time.perf_counter()
    subscriptions = history.subscriptions
    ours = fit_risk_model(history.orders, day, shop.horizon_days, subscriptions=subscriptions)
    kizuki_fit = time.perf_counter() - started
    started = time.perf_counter()
    score_customers(history.orders, day, shop.horizon_days, subscriptions=subscriptions, model=ours)
    kizuki_score = time.perf_counter() - started
    return {
        "load": loaded,
        "summary": summary,
        "fit": fit,
        "predict": predict,
        "customers": float(x.shape[0]),
        "finite": float(np.isfinite(p_none).all() and np.isfinite(np.asarray(expected)).all()),
        "kizuki_fit": kizuki_fit,
        "kizuki_score": kizuki_score,
        "peak_rss_mib": peak_rss_mib(),
    }


def _args(shop_id: ShopId, as_of: datetime) -> list[str]:
    return ["--shop", str(shop_id), "--as-of", as_of.isoformat()]


def child(kind: str, url: str, shop_id: ShopId, as_of: datetime) -> Result:
    """Run one measurement in a fresh interpreter; its result as printed JSON."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.recompute", url, "--child", kind, *_args(shop_id, as_of)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: Result = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


async def rescores(
    sessions: async_sessionmaker[AsyncSession], shop_id: ShopId, count: int, seed: int
) -> list[float]:
    """Milliseconds of each rescoring unit of work (load, score, write, commit) after an order."""
    async with sessions() as session:
        ids = (
            await session.exec(
                select(Order.customer_id, Order.connection_id)
                .where(col(Order.shop_id) == shop_id)
                .limit(50_000)
            )
        ).all()
        fit = await session.get(ShopRiskModel, shop_id)
    # After the last full run's cut-off: rescoring reuses that fit and cannot go back before it.
    moment = (fit.fitted_as_of if fit and fit.fitted_as_of else AS_OF) + timedelta(minutes=1)
    rng = np.random.default_rng(seed)
    millis: list[float] = []
    marker = f"bench-rescore-{uuid.uuid4().hex[:8]}-"
    try:
        for n in range(count):
            customer_id, connection_id = ids[int(rng.integers(len(ids)))]
            moment += timedelta(seconds=10)
            async with sessions() as session:
                session.add(
                    Order(
                        shop_id=shop_id,
                        connection_id=connection_id,
                        customer_id=customer_id,
                        external_id=f"{marker}{n}",
                        ordered_at=moment,
                        total_amount=4000,
                        item_quantity=1,
                    )
                )
                await session.commit()
            started = time.perf_counter()
            async with sessions() as session:
                run = await rescore_customers(
                    session, shop_id, [customer_id], as_of=moment + timedelta(seconds=1)
                )
                await session.commit()
            if run.fitted:
                raise SystemExit("rescoring found no stored fit and recomputed the whole shop")
            millis.append((time.perf_counter() - started) * 1000)
    finally:
        async with sessions() as session:
            await session.exec(
                delete(Order).where(
                    col(Order.shop_id) == shop_id, col(Order.external_id).startswith(marker)
                )
            )
            await session.commit()
    return millis


async def prepare(url: str, customers: int, orders: int, seed: int) -> tuple[ShopId, datetime]:
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    started = time.perf_counter()
    shop_id, seeded = await seed_shop(sessions, customers=customers, orders=orders, seed=seed)
    if seeded:
        await analyze(engine)
        seconds = time.perf_counter() - started
        print(f"seeded {customers:,} customers, {orders:,} orders in {seconds:.0f} s")  # noqa: T201
    await vacuum(engine, NIGHTLY_TABLES)
    as_of = await next_night(sessions, shop_id)
    await engine.dispose()
    return shop_id, as_of


async def measure_rescores(url: str, shop_id: ShopId, count: int, seed: int) -> list[float]:
    engine = create_engine(url, pool_size=2)
    try:
        return await rescores(session_factory(engine), shop_id, count, seed)
    finally:
        await engine.dispose()


def report(full: Result, baseline: Result, millis: list[float]) -> bool:
    """Print the numbers; whether every target holds."""
    lines = [
        f"full recompute, {full['customers']:,.0f} customers ({full['scored']:,.0f} scorable): "
        f"{full['seconds']:.1f} s  [load {full['load']:.1f}, fit {full['fit']:.1f}, "
        f"score {full['score']:.1f} and write {full['write']:.1f} overlapping]  "
        f"peak RSS {full['peak_rss_mib']:,.0f} MiB",
        f"lifetimes BG/NBD on the same history ({baseline['customers']:,.0f} buyers): "
        f"summary {baseline['summary']:.1f} s, fit {baseline['fit']:.1f} s, "
        f"predict {baseline['predict']:.1f} s; Kizuki fit {baseline['kizuki_fit']:.1f} s, "
        f"score {baseline['kizuki_score']:.1f} s (same process)",
    ]
    lifetimes = baseline["fit"] + baseline["predict"]
    kizuki = baseline["kizuki_fit"] + baseline["kizuki_score"]
    lines.append(
        f"ratios: Kizuki fit+score / BG/NBD fit+predict = {kizuki / lifetimes:.2f}; "
        f"Kizuki full recompute (read, fit, score, store) / BG/NBD fit+predict = "
        f"{full['seconds'] / lifetimes:.2f}"
    )
    p50, p99 = percentile(millis, 0.50), percentile(millis, 0.99)
    lines.append(
        f"rescoring one customer after an order ({len(millis)} runs): "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    checks = {
        f"full recompute ≤ {TARGET_SECONDS:.0f} s": full["seconds"] <= TARGET_SECONDS,
        f"peak RSS ≤ {TARGET_RSS_MIB:,.0f} MiB": full["peak_rss_mib"] <= TARGET_RSS_MIB,
        f"rescoring p99 ≤ {TARGET_P99_MS:.0f} ms": p99 <= TARGET_P99_MS,
    }
    lines += [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in checks.items()]
    print("\n".join(lines))  # noqa: T201
    return all(checks.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "database_url",
        nargs="?",
        default=os.environ.get("KIZUKI_BENCH_DATABASE_URL", DEFAULT_URL),
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rescores", type=int, default=300)
    parser.add_argument("--child", choices=["recompute", "lifetimes"])
    parser.add_argument("--shop")
    parser.add_argument("--as-of")
    args = parser.parse_args()
    url: str = args.database_url
    if args.child:
        shop_id, as_of = ShopId(uuid.UUID(args.shop)), datetime.fromisoformat(args.as_of)
        work = child_recompute if args.child == "recompute" else child_lifetimes
        print(json.dumps(asyncio.run(work(url, shop_id, as_of))))  # noqa: T201
        return
    try:
        check_postgres(url)
        asyncio.run(ensure_database(url))
        migrate(url)
    except BenchSetupError as error:
        parser.error(str(error))
    shop_id, as_of = asyncio.run(prepare(url, args.customers, args.orders, args.seed))
    print(f"shop {shop_id}, as of {as_of.isoformat()}", flush=True)  # noqa: T201
    full = child("recompute", url, shop_id, as_of)
    baseline = child("lifetimes", url, shop_id, as_of)
    millis = asyncio.run(measure_rescores(url, shop_id, args.rescores, args.seed))
    sys.exit(0 if report(full, baseline, millis) else 1)


if __name__ == "__main__":
    main()
