"""Protocol A of shared/reference/prediction.md: Kizuki's risk against lifetimes on CDNOW.

    python -m bench.prediction_cdnow            # the holdout comparison (run it once per model)
    python -m bench.prediction_cdnow --select   # model selection inside the calibration period
    python -m bench.prediction_cdnow --direct   # Kizuki's scoring on arrays, no database

By default Kizuki runs through the product (bench/cdnow_import.py): CDNOW written as
`orders.csv`, `kizuki import` into a UTC shop in a scratch SQLite database, then
`kizuki score --as-of <cut-off> --horizon-days <h>`; its CSV is scored against the labels
from the raw file. `--direct` calls `score_customers` on the file's arrays instead.

Calibration 1997-01-01 .. 1997-09-30, holdout 1997-10-01 .. 1998-06-30 (273 days), same-day
rows merged, y = 1 when a customer buys nothing in the holdout. `--select` never reads the
holdout: it scores at 1997-07-01 (next 92 days), 1997-06-01 (next 122 days) and 1997-05-02
(next 152 days) with labels from the calibration months only; Kizuki's features and
hyper-parameters were chosen there.
Needs the `bench` extra (lifetimes, pandas, scipy).
"""

import argparse
import importlib.util
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.cdnow_import import ProductShop, import_cdnow, score
from domain.risk.history import OrderColumns, order_columns, purchases_before
from domain.risk.scoring import score_customers

FloatArray = NDArray[np.float64]

EPOCH = date(1997, 1, 1)
HOLDOUT_START = (date(1997, 10, 1) - EPOCH).days
HOLDOUT_END = (date(1998, 7, 1) - EPOCH).days
SELECTION = tuple((date(1997, m, d) - EPOCH).days for m, d in ((7, 1), (6, 1), (5, 2)))


def cdnow_path() -> Path:
    """CDNOW_master.txt inside the installed lifetimes (its loader needs pkg_resources)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        raise SystemExit("lifetimes is not installed: pip install -e '.[bench]'")
    return Path(spec.origin).parent / "datasets" / "CDNOW_master.txt"


def customer_ids(path: Path) -> NDArray[np.int64]:
    """The file's customer IDs, sorted: position = customer index of `load_cdnow`."""
    return np.unique(np.loadtxt(path, skiprows=1, usecols=0, dtype=np.int64))


def load_cdnow(path: Path) -> OrderColumns:
    """Every row of the master file as an order; days since 1997-01-01."""
    rows = np.loadtxt(path, skiprows=1, dtype=str)
    _, customer = np.unique(rows[:, 0].astype(np.int64), return_inverse=True)
    stamp = rows[:, 1].astype(np.int64)  # YYYYMMDD
    years = (stamp // 10000 - 1970).astype("datetime64[Y]")
    months = years.astype("datetime64[M]") + (stamp // 100 % 100 - 1)
    dates = months.astype("datetime64[D]") + (stamp % 100 - 1)
    day = (dates.astype(np.int64) - (EPOCH - date(1970, 1, 1)).days).astype(np.float64)
    return order_columns(
        n_customers=int(customer.max()) + 1,
        customer=customer,
        day=day,
        amount=rows[:, 3].astype(np.float64),
        quantity=rows[:, 2].astype(np.float64),
    )


@dataclass(frozen=True, slots=True)
class Split:
    as_of: int
    end: int
    x: FloatArray  # repeat purchases before as_of
    t_x: FloatArray
    age: FloatArray  # lifetimes' T: days from first purchase to the last calibration day
    count: FloatArray  # purchases in [as_of, end)

    @property
    def horizon(self) -> int:
        return self.end - self.as_of


def split(orders: OrderColumns, as_of: int, end: int) -> Split:
    """Per-customer summaries before `as_of` and purchase counts in [as_of, end)."""
    before = purchases_before(orders, as_of)
    counts = before.counts_before(as_of)
    start = before.start[:-1]
    first = before.day[start].astype(np.float64)
    last = before.day[start + counts - 1].astype(np.float64)
    later = purchases_before(orders, end)
    return Split(
        as_of=as_of,
        end=end,
        x=(counts - 1).astype(np.float64),
        t_x=last - first,
        age=(as_of - 1) - first,
        count=(later.counts_before(end) - later.counts_before(as_of)).astype(np.float64),
    )


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    p_none: FloatArray | None
    expected: FloatArray | None
    seconds: float
    # False for a score that only ranks: no Brier or log-loss.
    probability: bool = True


def kizuki(orders: OrderColumns, data: Split) -> Row:
    started = time.perf_counter()
    scores = score_customers(orders, float(data.as_of), data.horizon)
    return Row(
        "Kizuki", scores.p_no_purchase, scores.expected_purchases, time.perf_counter() - started
    )


def kizuki_product(shop: ProductShop, ids: NDArray[np.int64], data: Split) -> Row:
    """Kizuki's row from `kizuki score`'s CSV, rows put in the file's customer order."""
    scores = score(shop, EPOCH + timedelta(days=data.as_of), data.horizon)
    index = np.searchsorted(ids, scores.customer_id)
    # Every file customer exactly once: the same count, all found, none twice.
    if np.unique(scores.customer_id).shape[0] != ids.shape[0] or not np.array_equal(
        ids[np.minimum(index, ids.shape[0] - 1)], scores.customer_id
    ):
        raise SystemExit("kizuki score's customers differ from the file's")
    p_none = np.empty(ids.shape[0])
    expected = np.empty(ids.shape[0])
    p_none[index], expected[index] = scores.p_none, scores.expected
    return Row("Kizuki (import+score)", p_none, expected, scores.seconds)


def lifetimes_rows(data: Split) -> list[Row]:
    """BG/NBD, MBG/NBD and Pareto/NBD, each scored by P(no purchase in the window)."""
    warnings.filterwarnings("ignore")
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    h, x, t_x, age = float(data.horizon), data.x, data.t_x, data.age
    rows = []
    for name, fitter in (("BG/NBD", BetaGeoFitter), ("MBG/NBD", ModifiedBetaGeoFitter)):
        started = time.perf_counter()
        model = fitter().fit(x, t_x, age)
        seconds = time.perf_counter() - started
        r, alpha = model.params_["r"], model.params_["alpha"]
        alive = np.asarray(model.conditional_probability_alive(x, t_x, age))
        # Alive at the cut-off, the customer stays alive until a purchase: P(none) is the
        # Gamma-posterior zero term; a dropped-out customer never buys.
        silent = ((alpha + age) / (alpha + age + h)) ** (r + x)
        p_none = 1.0 - alive + alive * silent
        expected = model.conditional_expected_number_of_purchases_up_to_time(h, x, t_x, age)
        rows.append(Row(name, p_none, np.asarray(expected, dtype=np.float64), seconds))
    started = time.perf_counter()
    pareto = ParetoNBDFitter().fit(x, t_x, age)
    seconds = time.perf_counter() - started
    p_none = pareto.conditional_probability_of_n_purchases_up_to_time(0, h, x, t_x, age)
    expected = pareto.conditional_expected_number_of_purchases_up_to_time(h, x, t_x, age)
    rows.append(
        Row("Pareto/NBD", np.asarray(p_none, dtype=np.float64), np.asarray(expected), seconds)
    )
    return rows


def auc(score: FloatArray, label: FloatArray) -> float:
    """ROC AUC of `score` for `label == 1`, ties counted half (Mann-Whitney with mid-ranks)."""
    order = np.argsort(score, kind="stable")
    _, inverse, counts = np.unique(score[order], return_inverse=True, return_counts=True)
    ranks = np.empty(score.shape[0])
    ranks[order] = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    positives = float(label.sum())
    negatives = label.shape[0] - positives
    return float(
        (ranks[label == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def table(data: Split, rows: list[Row]) -> str:
    y = (data.count == 0).astype(np.float64)
    repeat, first = data.x > 0, data.x == 0
    header = (
        f"{'model':<22}{'AUC':>8}{'AUC rep':>9}{'AUC 1st':>9}{'Brier':>9}{'logloss':>9}"
        f"{'count r':>9}{'MAE':>8}{'secs':>8}"
    )
    lines = [
        f"as of day {data.as_of}, next {data.horizon} days: {y.shape[0]} customers, "
        f"{y.mean():.2%} buy nothing, {int(repeat.sum())} repeat buyers",
        header,
    ]
    for row in rows:
        cells = [f"{row.name:<22}"]
        if row.p_none is not None:
            # A rank-only score is used as is: clipping it would tie every value.
            p = np.clip(row.p_none, 1e-12, 1 - 1e-12) if row.probability else row.p_none
            loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
            cells += [
                f"{auc(p, y):8.4f}",
                f"{auc(p[repeat], y[repeat]):9.4f}",
                f"{auc(p[first], y[first]):9.4f}",
                f"{np.mean((p - y) ** 2):9.4f}" if row.probability else " " * 9,
                f"{loss:9.4f}" if row.probability else " " * 9,
            ]
        else:
            cells.append(" " * 44)
        if row.expected is not None:
            r = np.corrcoef(row.expected, data.count)[0, 1] if row.expected.std() > 0 else 0.0
            cells += [f"{r:9.3f}", f"{np.mean(np.abs(row.expected - data.count)):8.3f}"]
        else:
            cells.append(" " * 17)
        cells.append(f"{row.seconds:8.2f}")
        lines.append("".join(cells))
    return "\n".join(lines)


def references(data: Split) -> list[Row]:
    """Simple rows for context: recency alone, and the all-zero count forecast."""
    gap = data.age - data.t_x
    return [
        Row("days since last", gap.astype(np.float64), None, 0.0, probability=False),
        Row("predict 0 purchases", None, np.zeros_like(data.count), 0.0),
    ]


def run(orders: OrderColumns, as_of: int, end: int, kizuki_row: Callable[[Split], Row]) -> str:
    data = split(orders, as_of, end)
    return table(data, [kizuki_row(data), *lifetimes_rows(data), *references(data)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", action="store_true", help="calibration-period splits only")
    parser.add_argument(
        "--direct", action="store_true", help="score the arrays directly, not through the CLI"
    )
    args = parser.parse_args()
    path = cdnow_path()
    orders = load_cdnow(path)
    splits = (
        [(as_of, HOLDOUT_START) for as_of in SELECTION]
        if args.select
        else [(HOLDOUT_START, HOLDOUT_END)]
    )
    if args.direct:
        for as_of, end in splits:
            print(run(orders, as_of, end, lambda data: kizuki(orders, data)), end="\n\n")  # noqa: T201
        return
    ids = customer_ids(path)
    with tempfile.TemporaryDirectory(prefix="cdnow-") as workdir:
        shop = import_cdnow(path, Path(workdir))
        print(  # noqa: T201
            f"kizuki import: {shop.rows} rows of orders.csv in {shop.import_seconds:.2f} s "
            "(CLI process, SQLite); Kizuki's secs below are `kizuki score`'s whole process"
        )
        for as_of, end in splits:
            row = run(orders, as_of, end, lambda data: kizuki_product(shop, ids, data))
            print(row, end="\n\n")  # noqa: T201


if __name__ == "__main__":
    main()
