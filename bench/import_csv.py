"""CSV import benchmark: generated shop → import files → `import_directory` into PostgreSQL.

    .venv/bin/python bench/import_csv.py postgresql+asyncpg://postgres@127.0.0.1/kizuki_bench
    (or set KIZUKI_BENCH_DATABASE_URL; --orders N, default 1,000,000; --small N, default 100,000)

Writes the demo shop in the import format twice (about --small and --orders order rows) into
a temporary folder, migrates the database, then for each size runs in a fresh child process
(so peak RSS is the import's own): the import into a new shop, and a baseline that COPYs the
same rows of all five files into plain text tables. Prints rows/s and peak RSS of each; the
import's peak RSS at both sizes shows whether memory stays flat. Use a scratch database:
each run adds a shop.
"""

import argparse
import asyncio
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config

from bench.memory import peak_rss_mib
from domain.db import create_engine, session_factory
from domain.demo import generate_shop, write_import_files
from domain.ids import ShopId
from domain.importing import import_directory
from domain.importing.layout import FILES
from domain.shop.service import create_shop

ROOT = Path(__file__).resolve().parent.parent

SEED = 20240601
AS_OF = datetime(2025, 6, 1, tzinfo=UTC)


def customers_for(orders: int) -> int:
    """How many generated customers give about `orders` order rows (measured on a sample)."""
    sample_customers = 5_000
    sample = sum(
        len(batch.records.orders)
        for batch in generate_shop(SEED, customers=sample_customers, as_of=AS_OF)
    )
    return math.ceil(orders / (sample / sample_customers) * 1.02)


async def run_import(url: str, directory: Path) -> dict[str, float]:
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    async with sessions() as session:
        shop = await create_shop(session, f"bench-{uuid.uuid4().hex[:8]}")
        await session.commit()
    started = time.perf_counter()
    report = await import_directory(sessions, ShopId(shop.id), directory)
    seconds = time.perf_counter() - started
    await engine.dispose()
    rows = report.rows_read
    return {
        "seconds": seconds,
        "rows": rows,
        "orders": report.orders.inserted,
        "rows_per_s": rows / seconds,
        "orders_per_s": report.orders.inserted / seconds,
        "peak_rss_mib": peak_rss_mib(),
    }


async def run_copy(url: str, directory: Path) -> dict[str, float]:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    started = time.perf_counter()
    rows = orders = 0
    async with connection.transaction():
        for spec in FILES:
            path = directory / spec.name
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                table = f"bench_copy_{spec.name.removesuffix('.csv')}"
                columns = ", ".join(f'"{column}" text' for column in header)
                await connection.execute(f"DROP TABLE IF EXISTS {table}")
                await connection.execute(f"CREATE UNLOGGED TABLE {table} ({columns})")
                chunk: list[list[str]] = []
                for row in reader:
                    chunk.append(row)
                    if len(chunk) == 10_000:
                        await connection.copy_records_to_table(table, records=chunk)
                        rows += len(chunk)
                        chunk = []
                if chunk:
                    await connection.copy_records_to_table(table, records=chunk)
                    rows += len(chunk)
            if spec.name == "orders.csv":
                orders = await connection.fetchval(f"SELECT count(*) FROM {table}")
        seconds = time.perf_counter() - started
        for spec in FILES:
            await connection.execute(f"DROP TABLE bench_copy_{spec.name.removesuffix('.csv')}")
    await connection.close()
    return {
        "seconds": seconds,
        "rows": rows,
        "orders": orders,
        "rows_per_s": rows / seconds,
        "orders_per_s": orders / seconds,
        "peak_rss_mib": peak_rss_mib(),
    }


def child(kind: str, url: str, directory: Path) -> dict[str, float]:
    """Run one measurement in a fresh interpreter; its result as printed JSON."""
    completed = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--dir", str(directory), url],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "database_url", nargs="?", default=os.environ.get("KIZUKI_BENCH_DATABASE_URL")
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--child", choices=["import", "copy"])
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if not args.database_url or not args.database_url.startswith("postgresql+asyncpg"):
        parser.error("give a postgresql+asyncpg:// URL (argument or KIZUKI_BENCH_DATABASE_URL)")
    if args.child:
        work = run_import if args.child == "import" else run_copy
        print(json.dumps(asyncio.run(work(args.database_url, args.dir))))  # noqa: T201
        return

    migrate(args.database_url)
    results = []
    with tempfile.TemporaryDirectory(prefix="kizuki-bench-") as tmp:
        for target in (args.small, args.orders):
            directory = Path(tmp) / str(target)
            started = time.perf_counter()
            customers = customers_for(target)
            written = write_import_files(directory, SEED, customers=customers, as_of=AS_OF)
            generated = time.perf_counter() - started
            size = sum(path.stat().st_size for path in directory.iterdir()) / 2**20
            print(  # noqa: T201
                f"generated {written.orders:,} orders, {written.order_lines:,} lines, "
                f"{written.customers:,} customers, {written.subscriptions:,} subscriptions, "
                f"{written.subscription_events:,} events ({size:,.0f} MiB) in {generated:.0f} s",
                flush=True,
            )
            for kind in ("import", "copy"):
                result = child(kind, args.database_url, directory)
                results.append((kind, written.orders, result))
                print(  # noqa: T201
                    f"{kind:>6} {written.orders:>9,} orders: {result['seconds']:7.1f} s "
                    f"{result['orders_per_s']:>9,.0f} orders/s {result['rows_per_s']:>9,.0f} "
                    f"rows/s (all files)  peak RSS {result['peak_rss_mib']:,.0f} MiB",
                    flush=True,
                )
            for path in directory.iterdir():
                path.unlink()


if __name__ == "__main__":
    main()
