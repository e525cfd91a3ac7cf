"""The load driver: a fixed number of keep-alive clients POSTing one request for a fixed time.

Runs in its own process (`python -m bench.load …`) so its CPU is not the server's, and prints
one JSON `LoadResult`. Every response must be 200 and equal to the reference answer (the one
the caller already checked and compared across servers): byte-equal, or else parsed, free of
errors and equal as JSON. Only loopback URLs are accepted; the run stops by itself.
"""

import asyncio
import json
import math
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer
from pydantic import BaseModel

from bench.query import AnswerError, check_answer, differences, request_body

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
REQUEST_TIMEOUT_SECONDS = 30.0
# Past the planned end, a run that has not finished is cut off.
OVERRUN_SECONDS = 60.0
ERROR_SAMPLES = 5


class LoadResult(BaseModel):
    """What one measured run saw; latencies are of successful requests only."""

    requests: int
    errors: int
    error_samples: list[str]
    elapsed_seconds: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    warmup_requests: int
    driver_cpu_seconds: float
    response_bytes: int


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    headers: dict[str, str]
    body: bytes
    reference_body: bytes
    reference: object


@dataclass(slots=True)
class Tally:
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(message)


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of ascending values (0 for none)."""
    if not sorted_values:
        return 0
    # Rounded first: 0.99 * 100 is 99.00000000000001 in floating point.
    rank = max(1, math.ceil(round(fraction * len(sorted_values), 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _verdict(target: Target, status: int, body: bytes) -> str | None:
    """None for a correct response, else what is wrong with it."""
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    if body == target.reference_body:
        return None
    try:
        answer = check_answer(body)
    except AnswerError as error:
        return str(error)
    if answer != target.reference:
        first = next(differences(target.reference, answer), "?")
        return f"answer differs from the reference: {first}"
    return None


async def _client_loop(
    client: httpx.AsyncClient, target: Target, deadline: float, tally: Tally
) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        try:
            response = await client.post(target.url, content=target.body, headers=target.headers)
        except httpx.HTTPError as error:
            tally.error(f"{type(error).__name__}: {error}")
            continue
        finished = time.perf_counter_ns()
        problem = _verdict(target, response.status_code, response.content)
        if problem is None:
            tally.latencies_ns.append(finished - started)
        else:
            tally.error(problem)


async def _phase(
    client: httpx.AsyncClient, target: Target, concurrency: int, seconds: float
) -> tuple[Tally, float]:
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_client_loop(client, target, deadline, tally) for _ in range(concurrency))
    )
    return tally, time.perf_counter() - started


async def drive(
    target: Target, *, concurrency: int, duration: float, warmup: float
) -> tuple[LoadResult, list[int]]:
    """Warm up for `warmup` seconds, then measure `duration` seconds at `concurrency`.

    Returns the summary and the measured latencies in nanoseconds, ascending.
    """
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
    async with (
        asyncio.timeout(warmup + duration + OVERRUN_SECONDS),
        httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client,
    ):
        warm, _ = await _phase(client, target, concurrency, warmup)
        cpu_started = time.process_time()
        tally, elapsed = await _phase(client, target, concurrency, duration)
        cpu = time.process_time() - cpu_started
    latencies = sorted(tally.latencies_ns)
    requests = len(latencies)
    result = LoadResult(
        requests=requests,
        errors=tally.errors + warm.errors,
        error_samples=(warm.error_samples + tally.error_samples)[:ERROR_SAMPLES],
        elapsed_seconds=elapsed,
        requests_per_second=requests / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(latencies, 0.50) / 1e6,
        p90_ms=percentile(latencies, 0.90) / 1e6,
        p99_ms=percentile(latencies, 0.99) / 1e6,
        max_ms=(latencies[-1] if latencies else 0) / 1e6,
        warmup_requests=len(warm.latencies_ns),
        driver_cpu_seconds=cpu,
        response_bytes=len(target.reference_body),
    )
    return result, latencies


def write_latencies(path: Path, latencies: list[int]) -> None:
    """Latencies in nanoseconds as native 64-bit integers, for `read_latencies`."""
    path.write_bytes(array("q", latencies).tobytes())


def read_latencies(path: Path) -> list[int]:
    values = array("q")
    values.frombytes(path.read_bytes())
    return values.tolist()


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise typer.BadParameter(f"{url!r} is not on loopback", param_hint="--url")


def main(
    url: Annotated[str, typer.Option(help="the server's /graphql URL (loopback only)")],
    key: Annotated[
        str, typer.Option(envvar="KIZUKI_BENCH_API_KEY", help="the API key sent as Bearer")
    ],
    reference: Annotated[
        Path, typer.Option(help="file with the checked answer every response must equal")
    ],
    concurrency: Annotated[int, typer.Option(min=1, max=1024)] = 16,
    duration: Annotated[float, typer.Option(min=0.5, help="measured seconds")] = 20.0,
    warmup: Annotated[float, typer.Option(min=0.0, help="unmeasured seconds first")] = 3.0,
    page_size: Annotated[int, typer.Option(min=1, max=100)] = 50,
    latencies: Annotated[
        Path | None, typer.Option(help="file to write the measured latencies to")
    ] = None,
) -> None:
    """Drive one server and print the run's `LoadResult` as JSON."""
    check_loopback(url)
    reference_body = reference.read_bytes()
    target = Target(
        url=url,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        body=request_body(page_size),
        reference_body=reference_body,
        reference=check_answer(reference_body, page_size=page_size),
    )
    result, measured = asyncio.run(
        drive(target, concurrency=concurrency, duration=duration, warmup=warmup)
    )
    if latencies is not None:
        write_latencies(latencies, measured)
    typer.echo(json.dumps(result.model_dump()))


if __name__ == "__main__":
    typer.run(main)
