"""Protocol A of shared/reference/prediction.md: Kizuki's risk against lifetimes on CDNOW.

    python -m bench.prediction_cdnow            # the holdout comparison (run it once per model)
    python -m bench.prediction_cdnow --select   # model selection inside the calibration period
    python -m bench.prediction_cdnow --direct   # Kizuki's scoring on arrays, no database
    python -m bench.prediction_cdnow --select --count-diagnostics   # counts: mean vs median

By default Kizuki runs through the product (bench/cdnow_import.py): CDNOW written as
`orders.csv`, `kizuki import` into a UTC shop in a scratch SQLite database, then
`kizuki score --as-of <cut-off> --horizon-days <h>`; its CSV is scored against the labels
from the raw file. `--direct` calls `score_customers` on the file's arrays instead.

Calibration 1997-01-01 .. 1997-09-30, holdout 1997-10-01 .. 1998-06-30 (273 days), same-day
rows merged, y = 1 when a customer buys nothing in the holdout. `--select` never reads the
holdout: it scores at 1997-07-01 (next 92 days), 1997-06-01 (next 122 days) and 1997-05-02
(next 152 days) with labels from the calibration months only; Kizuki's features and
hyper-parameters were chosen there. Under each table: paired bootstrap 95% intervals of
Kizuki's AUC minus each lifetimes model's, over all customers and over first-time buyers.
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


# Paired bootstrap of AUC differences: customers resampled with replacement.
RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601
PUBLIC = ("BG/NBD", "MBG/NBD", "Pareto/NBD")


def _weighted_auc(level: NDArray[np.int64], levels: int, y: FloatArray, w: FloatArray) -> float:
    """`auc` with customer `w`eights (resample counts): pairs weighted, ties counted half."""
    pos = np.bincount(level, weights=w * y, minlength=levels)
    neg = np.bincount(level, weights=w * (1.0 - y), minlength=levels)
    below = np.cumsum(neg) - neg
    return float((pos * (below + neg / 2.0)).sum() / (pos.sum() * neg.sum()))


def bootstrap(data: Split, rows: list[Row]) -> str:
    """95% percentile intervals of AUC(Kizuki) - AUC(model), all and first-time buyers."""
    y = (data.count == 0).astype(np.float64)
    first = (data.x == 0).astype(np.float64)
    kizuki_row, publics = rows[0], [row for row in rows if row.name in PUBLIC]
    scored = [kizuki_row, *publics]
    codes = []
    for row in scored:
        assert row.p_none is not None
        _, inverse = np.unique(row.p_none, return_inverse=True)
        codes.append((inverse.reshape(-1).astype(np.int64), int(inverse.max()) + 1))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = y.shape[0]
    draws = np.empty((RESAMPLES, len(scored), 2))
    for b in range(RESAMPLES + 1):
        w = (
            np.ones(n)
            if b == RESAMPLES
            else np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        )
        values = [(_weighted_auc(c, k, y, w), _weighted_auc(c, k, y, w * first)) for c, k in codes]
        if b == RESAMPLES:
            point = np.array(values)
        else:
            draws[b] = values
    lines = [
        f"paired bootstrap, {RESAMPLES} resamples of customers (seed {BOOTSTRAP_SEED}): "
        "AUC Kizuki - model, 95% interval"
    ]
    for index, row in enumerate(publics, start=1):
        cells = [f"  vs {row.name:<11}"]
        for column, label in ((0, "all"), (1, "first-time")):
            diff = draws[:, 0, column] - draws[:, index, column]
            low, high = np.percentile(diff, [2.5, 97.5])
            estimate = point[0, column] - point[index, column]
            cells.append(f"{label} {estimate:+.4f} [{low:+.4f}, {high:+.4f}]")
        lines.append("   ".join(cells))
    return "\n".join(lines)


def kizuki_counts(orders: OrderColumns, data: Split) -> tuple[FloatArray, FloatArray]:
    """Kizuki's predictive count in the window, per customer: its mean and its median.

    Diagnostics only: the product exposes the mean (`expected_purchases`); the median comes
    from the same zero-inflated NegBin, rebuilt here from the model's own pieces (checked
    against the product's mean).
    """
    from domain.risk.features import design, snapshot
    from domain.risk.likelihood import base_alive, log_attrition, log_effective, sigmoid, times
    from domain.risk.rhythm import posterior
    from domain.risk.state import profile_as_of
    from domain.risk.subscriptions import subscription_snapshot
    from domain.risk.training import train

    as_of, horizon = float(data.as_of), float(data.horizon)
    purchases = purchases_before(orders, as_of)
    model = train(purchases, as_of, horizon)
    snap = snapshot(purchases, as_of)
    profile = profile_as_of(purchases, as_of)
    post = posterior(profile.rhythm, snap.repeat, snap.span, snap.age)
    subs = subscription_snapshot(None, as_of, purchases.n_customers)
    z = (design(snap, profile, post, subs, None) - model.mean) / model.scale
    alive = sigmoid(base_alive(post) + model.alive_bias + times(z, model.alive_weights))
    log_rate = np.log(post.shape / post.rate) + model.rate_bias + times(z, model.rate_weights)
    log_mu = log_attrition(log_rate, post.dropout, model.log_decay, model.log_dropout)[0]
    window = profile.rhythm.window(snap.age, horizon)
    mean = np.exp(log_rate + log_effective(window, log_mu)[0])
    shape = post.shape * np.exp(model.log_shape)
    product = score_customers(orders, as_of, data.horizon, model=model).expected_purchases
    if not np.allclose(alive * mean, product, rtol=1e-9, atol=1e-12):
        raise SystemExit("the rebuilt count distribution differs from the product's mean")
    # P(N = n): 1 - alive + alive * NB(0) at 0, alive * NB(n) above; NB by its recursion.
    p = shape / (shape + mean)
    term = np.exp(shape * np.log(p))
    cdf = 1.0 - alive + alive * term
    median = np.zeros(mean.shape[0])
    for n in range(1, 200):
        median += cdf < 0.5
        term = term * (n - 1 + shape) / n * (1.0 - p)
        cdf = cdf + alive * term
    return alive * mean, median


def count_diagnostics(orders: OrderColumns, data: Split) -> str:
    """Count MAE and Pearson r: Kizuki's mean and median count, and the public models' means."""
    mean, median = kizuki_counts(orders, data)
    counts = [("Kizuki mean", mean), ("Kizuki median", median)]
    counts += [(row.name, row.expected) for row in lifetimes_rows(data) if row.expected is not None]
    lines = [
        f"counts as of day {data.as_of}, next {data.horizon} days",
        f"{'model':<22}{'count r':>9}{'MAE':>8}",
    ]
    for name, value in counts:
        r = np.corrcoef(value, data.count)[0, 1] if value.std() > 0 else 0.0
        lines.append(f"{name:<22}{r:9.3f}{np.mean(np.abs(value - data.count)):8.3f}")
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
    rows = [kizuki_row(data), *lifetimes_rows(data)]
    return table(data, [*rows, *references(data)]) + "\n" + bootstrap(data, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", action="store_true", help="calibration-period splits only")
    parser.add_argument(
        "--direct", action="store_true", help="score the arrays directly, not through the CLI"
    )
    parser.add_argument(
        "--count-diagnostics",
        action="store_true",
        help="with --select: count MAE and r of Kizuki's mean and median count, arrays only",
    )
    args = parser.parse_args()
    path = cdnow_path()
    orders = load_cdnow(path)
    if args.count_diagnostics:
        if not args.select:
            raise SystemExit("--count-diagnostics runs on the calibration splits: add --select")
        for as_of in SELECTION:
            print(count_diagnostics(orders, split(orders, as_of, HOLDOUT_START)), end="\n\n")  # noqa: T201
        return
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
