"""What the read benchmark prints: the environment, the dataset, the table and the ratio."""

import os
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from bench.database import Dataset
from bench.load import ERROR_SAMPLES, LoadResult, percentile

GOAL = 0.40
PACKAGES = (
    "uvicorn",
    "uvloop",
    "httptools",
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "sqlalchemy",
    "asyncpg",
    "httpx",
)


@dataclass(frozen=True, slots=True)
class Measured:
    server: str
    load: LoadResult
    # CPU seconds the server process used over the warm-up and the measured time.
    server_cpu_seconds: float | None
    # CPU seconds its PostgreSQL backends used over the same time.
    database_cpu_seconds: float | None
    warmup_seconds: float
    load_average_before: float | None

    @property
    def server_cpu_share(self) -> float | None:
        """The server's CPU use while driven: 1.0 is one core busy all the time."""
        if self.server_cpu_seconds is None:
            return None
        return self.server_cpu_seconds / (self.load.elapsed_seconds + self.warmup_seconds)

    @property
    def cpu_ms_per_request(self) -> float | None:
        """Server CPU per answered request: less sensitive than requests/s to other load."""
        return self._per_request(self.server_cpu_seconds)

    @property
    def database_ms_per_request(self) -> float | None:
        """PostgreSQL backend CPU per answered request."""
        return self._per_request(self.database_cpu_seconds)

    def _per_request(self, seconds: float | None) -> float | None:
        answered = self.load.requests + self.load.warmup_requests
        if seconds is None or not answered:
            return None
        return 1000 * seconds / answered


@dataclass(frozen=True, slots=True)
class PageShape:
    customers: int = 0
    identities: int = 0
    orders: int = 0
    lines: int = 0


def combine(rounds: Sequence[Measured], latencies_ns: list[int]) -> Measured:
    """One server's rounds as one run: counts and times summed, percentiles over all requests."""
    first = rounds[0]
    latencies = sorted(latencies_ns)
    elapsed = sum(row.load.elapsed_seconds for row in rounds)
    samples = [sample for row in rounds for sample in row.load.error_samples]
    load = LoadResult(
        requests=len(latencies),
        errors=sum(row.load.errors for row in rounds),
        error_samples=samples[:ERROR_SAMPLES],
        elapsed_seconds=elapsed,
        requests_per_second=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(latencies, 0.50) / 1e6,
        p90_ms=percentile(latencies, 0.90) / 1e6,
        p99_ms=percentile(latencies, 0.99) / 1e6,
        max_ms=(latencies[-1] if latencies else 0) / 1e6,
        warmup_requests=sum(row.load.warmup_requests for row in rounds),
        driver_cpu_seconds=sum(row.load.driver_cpu_seconds for row in rounds),
        response_bytes=first.load.response_bytes,
    )
    averages = [row.load_average_before for row in rounds if row.load_average_before is not None]
    return Measured(
        server=first.server,
        load=load,
        server_cpu_seconds=_total([row.server_cpu_seconds for row in rounds]),
        database_cpu_seconds=_total([row.database_cpu_seconds for row in rounds]),
        warmup_seconds=sum(row.warmup_seconds for row in rounds),
        load_average_before=sum(averages) / len(averages) if averages else None,
    )


def _total(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) if len(known) == len(values) else None


def rounds_line(rounds: dict[str, list[Measured]]) -> str:
    parts = [
        f"{name} " + ", ".join(f"{row.load.requests_per_second:.1f}" for row in rows)
        for name, rows in rounds.items()
    ]
    return f"rounds       requests/s per round (order alternates): {'; '.join(parts)}"


def page_shape(answer: object) -> PageShape:
    """How many customers, identities, orders and lines one answer holds."""
    counts = {"displayName": 0, "emailMasked": 0, "orderedAt": 0, "position": 0}

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key in counts.keys() & value.keys():
                counts[key] += 1
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(answer)
    return PageShape(
        counts["displayName"], counts["emailMasked"], counts["orderedAt"], counts["position"]
    )


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _package(name: str) -> str:
    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return f"{name} (not installed)"


def command_line() -> str:
    return shlex.join(["python", "-m", "bench.graphql_read", *sys.argv[1:]])


def environment_lines(postgres: str) -> list[str]:
    return [
        f"command      {command_line()}",
        f"machine      {os.cpu_count()} CPUs ({_cpu_model()}), {platform.system()} "
        f"{platform.release()}",
        f"software     Python {platform.python_version()}, PostgreSQL {postgres}",
        f"             {', '.join(_package(name) for name in PACKAGES)}",
    ]


def dataset_line(data: Dataset, *, seeded_seconds: float | None) -> str:
    how = "reused" if seeded_seconds is None else f"seeded now in {seeded_seconds:.0f} s"
    return (
        f"dataset      {data.customers:,} customers, {data.identities:,} identities, "
        f"{data.orders:,} orders, {data.lines:,} lines ({how})"
    )


def request_line(shape: PageShape, sizes: dict[str, int]) -> list[str]:
    body = ", ".join(f"{size / 1024:.0f} KiB from {name}" for name, size in sizes.items())
    return [
        "request      customers(first: 50) { identities, orders(last: 5) { lines } }: "
        f"{shape.customers} customers, {shape.identities} identities, {shape.orders} orders, "
        f"{shape.lines} lines",
        f"             {body}; both servers' answers are equal as JSON",
    ]


def _cell(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def table(rows: Sequence[Measured]) -> list[str]:
    header = (
        f"{'server':<10}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
        f"{'requests':>10}{'server CPU':>12}{'CPU ms/req':>12}{'DB ms/req':>11}"
        f"{'driver CPU':>12}{'load avg':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        load = row.load
        driver = load.driver_cpu_seconds / load.elapsed_seconds if load.elapsed_seconds else None
        lines.append(
            f"{row.server:<10}{load.requests_per_second:>12.1f}{load.p50_ms:>10.1f}"
            f"{load.p99_ms:>10.1f}{load.errors:>8}{load.requests:>10}"
            f"{_cell(row.server_cpu_share, '{:.0%}'):>12}"
            f"{_cell(row.cpu_ms_per_request, '{:.1f}'):>12}"
            f"{_cell(row.database_ms_per_request, '{:.1f}'):>11}{_cell(driver, '{:.0%}'):>12}"
            f"{_cell(row.load_average_before, '{:.2f}'):>10}"
        )
    return lines


def ratio_lines(kizuki: Measured, baseline: Measured) -> list[str]:
    if baseline.load.requests_per_second <= 0:
        return ["ratio        n/a: the baseline completed no request"]
    ratio = kizuki.load.requests_per_second / baseline.load.requests_per_second
    verdict = "met" if ratio >= GOAL else "NOT met"
    lines = [
        f"ratio        Kizuki / baseline throughput = {ratio:.1%} (goal >= {GOAL:.0%}: {verdict})"
    ]
    kizuki_cpu, baseline_cpu = kizuki.cpu_ms_per_request, baseline.cpu_ms_per_request
    if kizuki_cpu and baseline_cpu:
        share = baseline_cpu / kizuki_cpu
        lines.append(f"             baseline / Kizuki server CPU per request = {share:.1%}")
    kizuki_db, baseline_db = kizuki.database_ms_per_request, baseline.database_ms_per_request
    if kizuki_cpu and baseline_cpu and kizuki_db is not None and baseline_db is not None:
        share = (baseline_cpu + baseline_db) / (kizuki_cpu + kizuki_db)
        lines.append(f"             baseline / Kizuki server + DB CPU per request = {share:.1%}")
    return lines
