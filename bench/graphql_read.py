"""Read benchmark: Kizuki's GraphQL API against a hand-written endpoint, same data, same run.

    python -m bench.graphql_read [--database-url URL] [--customers 10000] [--concurrency 16]
                                 [--duration 20] [--warmup 3] [--seed 1] [--rounds 1]

Seeds the demo shop once into a dedicated PostgreSQL database, starts both servers as uvicorn
processes on loopback, checks that they answer the same JSON, then drives each in turn from a
separate load process and prints requests/s, p50 and p99 side by side with the ratio, and
the CPU each server and its PostgreSQL backends spent per request (Linux `/proc`).
Exits 1 when any request failed or the answers differ.
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Annotated

import httpx
import typer

from bench import report
from bench.backends import backend_pids, backends_cpu
from bench.database import (
    DEFAULT_DATABASE_URL,
    BenchSetupError,
    Dataset,
    analyze,
    check_postgres,
    dataset,
    ensure_database,
    issue_key,
    migrate,
    postgres_version,
    prepare_shop,
    revoke_key,
)
from bench.load import OVERRUN_SECONDS, LoadResult, read_latencies
from bench.query import PAGE_SIZE, AnswerError, check_answer, differences, request_body
from bench.servers import ROOT, Server, cpu_seconds, log_tail, serve, server_environment
from domain.db import create_engine, session_factory
from domain.ids import ShopId

BASELINE_APP = "bench.baseline_app:create_app"
KIZUKI_APP = "bench.kizuki_app:create_app"
KEY_VARIABLE = "KIZUKI_BENCH_API_KEY"
LOG_SETTLE_SECONDS = 0.5


class BenchFailed(Exception):
    """The servers could not be measured or disagree; the message says how."""


@dataclass(frozen=True, slots=True)
class Setup:
    shop_id: ShopId
    key_id: uuid.UUID
    raw_key: str
    data: Dataset
    postgres: str
    seeded_seconds: float | None


async def _setup(database_url: str, *, customers: int, seed: int) -> Setup:
    engine = create_engine(database_url, pool_size=2)
    try:
        sessions = session_factory(engine)
        started = time.perf_counter()
        shop_id, seeded = await prepare_shop(sessions, customers=customers, seed=seed)
        seeded_seconds = time.perf_counter() - started if seeded else None
        await analyze(engine)
        key_id, raw_key = await issue_key(sessions, shop_id)
        return Setup(
            shop_id=shop_id,
            key_id=key_id,
            raw_key=raw_key,
            data=await dataset(engine, shop_id),
            postgres=await postgres_version(engine),
            seeded_seconds=seeded_seconds,
        )
    finally:
        await engine.dispose()


async def _teardown(database_url: str, setup: Setup) -> None:
    engine = create_engine(database_url, pool_size=1)
    try:
        await revoke_key(session_factory(engine), setup.shop_id, setup.key_id)
    finally:
        await engine.dispose()


def _headers(raw_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {raw_key}", "content-type": "application/json"}


def compare(servers: list[Server], raw_key: str, folder: Path) -> dict[str, Path]:
    """Ask each server once; both answers must be complete, error-free and equal as JSON.

    Returns each server's answer, saved as the reference its load run must reproduce.
    """
    answers: dict[str, object] = {}
    saved: dict[str, Path] = {}
    with httpx.Client(timeout=60.0, trust_env=False) as client:
        for server in servers:
            response = client.post(
                server.graphql_url, content=request_body(), headers=_headers(raw_key)
            )
            if response.status_code != 200:
                # uvicorn logs an app's exception only after the 500 went out.
                time.sleep(LOG_SETTLE_SECONDS)
                raise BenchFailed(
                    f"{server.name} answered HTTP {response.status_code}: {response.text[:500]}\n"
                    f"its log ends with:\n{log_tail(server.log)}"
                )
            try:
                answers[server.name] = check_answer(response.content)
            except AnswerError as error:
                raise BenchFailed(f"{server.name}: {error}") from None
            saved[server.name] = folder / f"{server.name}.json"
            saved[server.name].write_bytes(response.content)
    first, second = (answers[server.name] for server in servers)
    found = list(islice(differences(first, second), 10))
    if found:
        names = " against ".join(server.name for server in servers)
        raise BenchFailed(f"the answers differ ({names}):\n  " + "\n  ".join(found))
    return saved


def measure(
    server: Server,
    raw_key: str,
    reference: Path,
    database_url: str,
    latencies: Path,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
) -> tuple[report.Measured, list[int]]:
    """One load run against `server` from a separate driver process, and its latencies."""
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--url",
        server.graphql_url,
        "--reference",
        str(reference),
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--page-size",
        str(PAGE_SIZE),
        "--latencies",
        str(latencies),
    ]
    load_before = report.load_average()
    cpu_before = cpu_seconds(server.pid)
    backends_before = backends_cpu(asyncio.run(backend_pids(database_url, server.pid)))
    try:
        finished = subprocess.run(
            command,
            cwd=ROOT,
            env=os.environ | {KEY_VARIABLE: raw_key},
            capture_output=True,
            timeout=warmup + duration + 2 * OVERRUN_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise BenchFailed(f"the load driver for {server.name} did not stop in time") from error
    cpu_after = cpu_seconds(server.pid)
    # The pool holds one connection per client: its backends are all still there now.
    backends_after = backends_cpu(asyncio.run(backend_pids(database_url, server.pid)))
    if finished.returncode != 0:
        raise BenchFailed(
            f"the load driver for {server.name} failed:\n{finished.stderr.decode()[-2000:]}"
        )
    load = LoadResult.model_validate_json(finished.stdout.decode().strip().splitlines()[-1])
    server_cpu = None
    if cpu_before is not None and cpu_after is not None:
        server_cpu = cpu_after - cpu_before
    database_cpu = None
    if backends_after:
        database_cpu = sum(
            seconds - backends_before.get(pid, 0.0) for pid, seconds in backends_after.items()
        )
    measured = report.Measured(server.name, load, server_cpu, database_cpu, warmup, load_before)
    return measured, read_latencies(latencies)


def run(
    database_url: str,
    setup: Setup,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    rounds: int,
) -> tuple[list[str], dict[str, report.Measured]]:
    """Both servers up, answers compared, each driven in turn: the report's lines."""
    environment = server_environment(database_url, pool_size=concurrency)
    with tempfile.TemporaryDirectory(prefix="kizuki-bench-") as temporary:
        folder = Path(temporary)
        with (
            serve("baseline", BASELINE_APP, environment, folder) as baseline,
            serve("kizuki", KIZUKI_APP, environment, folder) as kizuki,
        ):
            references = compare([kizuki, baseline], setup.raw_key, folder)
            shape = report.page_shape(check_answer(references["kizuki"].read_bytes()))
            sizes = {name: path.stat().st_size for name, path in references.items()}
            runs: dict[str, list[report.Measured]] = {"baseline": [], "kizuki": []}
            latencies: dict[str, list[int]] = {"baseline": [], "kizuki": []}
            for number in range(rounds):
                # Alternating the order spreads drifting load on the machine over both servers.
                for server in (baseline, kizuki) if number % 2 == 0 else (kizuki, baseline):
                    measured, measured_latencies = measure(
                        server,
                        setup.raw_key,
                        references[server.name],
                        database_url,
                        folder / f"{server.name}-{number}.latencies",
                        concurrency=concurrency,
                        duration=duration,
                        warmup=warmup,
                    )
                    runs[server.name].append(measured)
                    latencies[server.name] += measured_latencies
    rows = [report.combine(runs[name], latencies[name]) for name in ("baseline", "kizuki")]
    lines = [
        *report.environment_lines(setup.postgres),
        "servers      uvicorn --factory <app> --host 127.0.0.1 --no-access-log "
        "--log-level warning (1 process each)",
        f"             KIZUKI_ENVIRONMENT=production, GraphiQL off, KIZUKI_POOL_SIZE={concurrency} "
        "(= concurrency), embedded job queue and events; analyst API key",
        report.dataset_line(setup.data, seeded_seconds=setup.seeded_seconds),
        *report.request_line(shape, sizes),
        f"load         {concurrency} concurrent keep-alive clients (httpx, own process), "
        f"{warmup:g} s warm-up, {duration:g} s measured, loopback"
        + ("" if rounds == 1 else f"; {rounds} rounds per server"),
        *([report.rounds_line(runs)] if rounds > 1 else []),
        "",
        *report.table(rows),
        "",
        "server CPU: the server process's share of a core while driven; CPU ms/req: its CPU per",
        "answered request (warm-up included); DB ms/req: the same for its PostgreSQL backends.",
        "The CPU columns depend less on other load on the machine than requests/s does.",
        "",
    ]
    return lines, {row.server: row for row in rows}


def main(
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL database for the bench (created if missing)")
    ] = DEFAULT_DATABASE_URL,
    customers: Annotated[int, typer.Option(min=50, help="demo customers")] = 10_000,
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 16,
    duration: Annotated[float, typer.Option(min=1.0, help="measured seconds per server")] = 20.0,
    warmup: Annotated[float, typer.Option(min=0.0, help="seconds before measuring")] = 3.0,
    seed: Annotated[int, typer.Option(help="demo generator seed")] = 1,
    rounds: Annotated[
        int, typer.Option(min=1, max=10, help="runs per server, alternating which goes first")
    ] = 1,
) -> None:
    """Measure Kizuki's GraphQL read against the hand-written endpoint."""
    try:
        check_postgres(database_url)
        asyncio.run(ensure_database(database_url))
        migrate(database_url)
        setup = asyncio.run(_setup(database_url, customers=customers, seed=seed))
    except BenchSetupError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    try:
        lines, results = run(
            database_url,
            setup,
            concurrency=concurrency,
            duration=duration,
            warmup=warmup,
            rounds=rounds,
        )
    except BenchFailed as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error
    finally:
        asyncio.run(_teardown(database_url, setup))
    lines += report.ratio_lines(results["kizuki"], results["baseline"])
    typer.echo("\n".join(lines))
    failed = {name: row.load for name, row in results.items() if row.load.errors}
    for name, result in failed.items():
        typer.secho(
            f"{name}: {result.errors} failed requests, e.g. " + "; ".join(result.error_samples),
            fg=typer.colors.RED,
            err=True,
        )
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
