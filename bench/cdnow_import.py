"""CDNOW through the product: CSV import format → `kizuki import` → `kizuki score`.

Each step is the real CLI in a child process against a scratch SQLite database, so the
numbers measure what a shop owner would run. Used by `bench/prediction_cdnow.py`.
"""

import csv
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

ORDER_COLUMNS = (
    "mall",
    "order_id",
    "customer_id",
    "ordered_at",
    "quantity",
    "total_amount",
    "currency",
)


def write_orders_csv(source: Path, directory: Path) -> int:
    """`orders.csv` with one order per line of CDNOW_master.txt; returns the rows written.

    Same-day lines of a customer stay separate orders (order IDs `customer-date-n`): the risk
    model merges them into one purchase occasion, as protocol A does.
    """
    seen: Counter[tuple[str, str]] = Counter()
    written = 0
    with (
        source.open(encoding="ascii") as lines,
        (directory / "orders.csv").open("w", encoding="utf-8", newline="") as out,
    ):
        writer = csv.writer(out)
        writer.writerow(ORDER_COLUMNS)
        next(lines)  # header
        for number, line in enumerate(lines, start=2):
            cells = line.split()
            if not cells:
                continue
            if len(cells) != 4:
                raise SystemExit(f"{source}:{number}: expected 4 columns, got {len(cells)}")
            customer, stamp, cds, dollars = cells
            seen[customer, stamp] += 1
            writer.writerow(
                (
                    "shopify",
                    f"{customer}-{stamp}-{seen[customer, stamp]}",
                    customer,
                    stamp,
                    cds,
                    _cents(dollars, source, number),
                    "USD",
                )
            )
            written += 1
    return written


def _cents(dollars: str, source: Path, number: int) -> int:
    """`12.00` as 1200, exactly (no float rounding)."""
    whole, _, fraction = dollars.partition(".")
    if not whole.isdigit() or len(fraction) > 2 or (fraction and not fraction.isdigit()):
        raise SystemExit(f"{source}:{number}: {dollars!r} is not a dollar amount")
    return int(whole) * 100 + int(fraction.ljust(2, "0") or "0")


@dataclass(frozen=True, slots=True)
class ProductScores:
    """One `kizuki score` file: per external customer ID, P(no purchase) and the expectation."""

    customer_id: IntArray
    p_none: FloatArray
    expected: FloatArray
    seconds: float


@dataclass(frozen=True, slots=True)
class ProductShop:
    """A migrated scratch database holding one shop with CDNOW imported."""

    env: dict[str, str]
    shop: str
    workdir: Path
    rows: int
    import_seconds: float


def kizuki(args: Sequence[str], env: dict[str, str]) -> str:
    """Run the `kizuki` CLI (the installed entry point's own `main`); return its stdout."""
    command = [sys.executable, "-c", "from kizuki.cli import main; main()", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"kizuki {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def import_cdnow(source: Path, workdir: Path) -> ProductShop:
    """Write the CSV, migrate a SQLite file in `workdir`, create a UTC shop, import the CSV."""
    folder = workdir / "import"
    folder.mkdir()
    rows = write_orders_csv(source, folder)
    env = {**os.environ, "KIZUKI_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'cdnow.db'}"}
    # No Redis: the CLI's import and score need none, and a stray one must not be used.
    env.pop("KIZUKI_REDIS_URL", None)
    kizuki(["migrate"], env)
    shop = kizuki(["shop", "create", "CDNOW", "--timezone", "UTC"], env).strip()
    started = time.perf_counter()
    kizuki(["import", "--shop", shop, str(folder)], env)
    return ProductShop(env, shop, workdir, rows, time.perf_counter() - started)


def score(shop: ProductShop, as_of: date, horizon_days: int) -> ProductScores:
    """`kizuki score` as of the start of `as_of` (UTC) for `horizon_days`, read back."""
    out = shop.workdir / f"scores-{as_of.isoformat()}-{horizon_days}.csv"
    started = time.perf_counter()
    kizuki(
        [
            "score",
            "--shop",
            shop.shop,
            "--as-of",
            as_of.isoformat(),
            "--horizon-days",
            str(horizon_days),
            "--out",
            str(out),
        ],
        shop.env,
    )
    seconds = time.perf_counter() - started
    ids: list[int] = []
    p_none: list[float] = []
    expected: list[float] = []
    with out.open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            if not row["probability"]:
                raise SystemExit(f"customer {row['external_id']} unscored: {row['top_reason']}")
            ids.append(int(row["external_id"]))
            p_none.append(float(row["probability"]))
            expected.append(float(row["expected_purchases"]))
    return ProductScores(
        np.asarray(ids, dtype=np.int64),
        np.asarray(p_none, dtype=np.float64),
        np.asarray(expected, dtype=np.float64),
        seconds,
    )
