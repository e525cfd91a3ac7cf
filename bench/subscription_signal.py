"""Does the subscription sign carry signal? The full score against the score without it.

    python -m bench.subscription_signal [--customers 4000] [--seed 20240601] [--horizon 90]

Loads the generated demo shop (seeded) into a scratch SQLite database through the ingest
path, reads its history back as the recompute does, and scores it at two cut-offs with the
shop's own model, fitted on backtests before each cut-off only:

- *earlier*: twice `horizon` days before the end of the history, labels from the next `horizon`
  days (still before the later cut-off);
- *held out*: `horizon` days before the end, labels from the last `horizon` days.

"Without the subscription sign" scores the same orders with no subscription events at all
(as `tests/domain/risk/test_quality.py` does): the model is fitted and applied without them.
The label is "no purchase in the next `horizon` days"; AUC of P(no purchase) against it,
overall, among subscribers (customers with any subscription event before the cut-off) and
among the others. Nothing here is tuned: the model is the product's, unchanged.
"""

import argparse
import asyncio
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from domain.db import AsyncSession
from domain.demo.service import DEFAULT_SEED, load_demo_shop
from domain.ids import ShopId
from domain.risk.days import local_day, shop_zone
from domain.risk.history import purchases_before
from domain.risk.loading import ShopHistory, load_history
from domain.risk.scoring import RiskScores, score_customers
from domain.risk.signs import SHOWN_AT, Sign
from domain.tables import metadata

# The demo's history ends here, so a seed and size give the same shop on every run.
END = datetime(2025, 11, 1, tzinfo=UTC)
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Row:
    cut_off: str
    segment: str
    customers: int
    silent_share: float
    auc_full: float
    auc_without: float
    brier_full: float
    brier_without: float


def auc(score: FloatArray, positive: BoolArray) -> float:
    """P(score of a random positive > score of a random negative), ties counted half."""
    n_pos = int(positive.sum())
    n_neg = int(positive.shape[0]) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    # Tied scores share the average of the 1-based ranks they span.
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


async def load_shop(workdir: Path, customers: int, seed: int) -> tuple[ShopHistory, float]:
    """The demo shop's whole history as columns, and the end of it in local days."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{workdir / 'demo.db'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        shop = await load_demo_shop(sessions, customers=customers, seed=seed, as_of=END)
        zone = shop_zone(shop.timezone)
        async with sessions() as session:
            history = await load_history(session, ShopId(shop.id), zone, before=END)
        return history, local_day(END, zone)
    finally:
        await engine.dispose()


def compare(history: ShopHistory, label: str, cut_off: float, horizon: int) -> list[Row]:
    """Rows of the table for one cut-off: all, subscribers, others."""
    orders, events = history.orders, history.subscriptions
    full = score_customers(orders, cut_off, horizon, subscriptions=events)
    without = score_customers(orders, cut_off, horizon)
    after = purchases_before(orders, cut_off + horizon)
    bought = after.counts_before(cut_off + horizon) - after.counts_before(cut_off)
    silent = bought == 0
    scored = full.scorable & without.scorable
    subscriber = np.zeros(history.size, dtype=np.bool_)
    subscriber[events.customer[events.day < cut_off]] = True
    segments = {
        "all": scored,
        "subscribers": scored & subscriber,
        "others": scored & ~subscriber,
        "subscription sign shows": scored & _shows(full, Sign.SUBSCRIPTION),
    }
    return [
        Row(
            cut_off=label,
            segment=name,
            customers=int(members.sum()),
            silent_share=float(silent[members].mean()) if members.any() else math.nan,
            auc_full=auc(full.p_no_purchase[members], silent[members]),
            auc_without=auc(without.p_no_purchase[members], silent[members]),
            brier_full=_brier(full.p_no_purchase[members], silent[members]),
            brier_without=_brier(without.p_no_purchase[members], silent[members]),
        )
        for name, members in segments.items()
    ]


def _shows(scores: RiskScores, sign: Sign) -> BoolArray:
    return np.asarray(scores.applies[:, sign] & (scores.strength[:, sign] >= SHOWN_AT))


def _brier(p: FloatArray, silent: BoolArray) -> float:
    return float(np.mean((p - silent) ** 2)) if p.shape[0] else math.nan


def table(rows: list[Row]) -> str:
    header = (
        "| cut-off | customers | n | silent | AUC full | AUC w/o subscription | Δ AUC "
        "| Brier full | Brier w/o |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(
            f"| {row.cut_off} | {row.segment} | {row.customers:,} | {row.silent_share:.3f} "
            f"| {row.auc_full:.4f} | {row.auc_without:.4f} "
            f"| {row.auc_full - row.auc_without:+.4f} "
            f"| {row.brier_full:.4f} | {row.brier_without:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--horizon", type=int, default=90)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kizuki-subscription-signal-") as workdir:
        history, end_day = asyncio.run(load_shop(Path(workdir), args.customers, args.seed))
    loaded = time.perf_counter()
    # Cut-offs at the start of a local day.
    end = math.floor(end_day)
    rows = compare(history, "earlier", float(end - 2 * args.horizon), args.horizon)
    rows += compare(history, "held out", float(end - args.horizon), args.horizon)
    print(  # noqa: T201
        f"demo shop: {args.customers:,} customers, seed {args.seed}, history to "
        f"{END.date().isoformat()}, horizon {args.horizon} days; "
        f"{history.orders.customer.shape[0]:,} orders, "
        f"{history.subscriptions.customer.shape[0]:,} subscription events"
    )
    print(table(rows))  # noqa: T201
    print(f"load {loaded - started:.1f} s, score {time.perf_counter() - loaded:.1f} s")  # noqa: T201


if __name__ == "__main__":
    main()
