"""The arq worker's composition root: `kizuki worker` calls `run_worker(settings)`.

`worker_settings(settings)` builds arq's settings from the `Settings` it is given (nothing is
read from the environment at import); `on_startup` creates the engine and puts the session
factory, the Redis event bus and the arq job queue into `ctx`, and `on_shutdown` disposes them.
"""

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypedDict, cast

import httpx
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob, cron
from arq.jobs import Deserializer, Serializer
from arq.worker import Function, Worker, func
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.db import create_engine, session_factory
from domain.jobs import Job
from domain.platforms import StorePlatform
from domain.settings import Settings
from integrations import build_platforms
from kizuki.events import RedisEventBus
from kizuki.jobs import QUEUE_NAME, ArqJobQueue, decode_job, encode_job
from kizuki.process import run as run_async
from kizuki.scheduler import CRON_PREFIX
from workers.registry import JOB_FUNCTIONS, JOB_TIMEOUT_SECONDS, MAX_TRIES

if TYPE_CHECKING:
    from arq.typing import StartupShutdown, WorkerCoroutine

# Concurrent jobs per worker process; each may hold one database connection.
MAX_JOBS = 10
# No results are kept: nothing reads them (jobs report through events and the database), and
# a kept result would make arq refuse the same `_job_id` until it expired, not just while the
# job is queued or running as `domain.jobs` promises.
KEEP_RESULT_SECONDS = 0


class WorkerSettings(TypedDict):
    """Keyword arguments of `arq.worker.Worker`, as `worker_settings` builds them."""

    functions: list[Function]
    queue_name: str
    redis_settings: RedisSettings
    on_startup: "StartupShutdown"
    on_shutdown: "StartupShutdown"
    job_serializer: Serializer
    job_deserializer: Deserializer
    max_jobs: int
    job_timeout: int
    keep_result: int
    max_tries: int


# Mall APIs answer within this or count as unavailable (the sync retries later).
HTTP_TIMEOUT_SECONDS = 30.0


def worker_settings(
    settings: Settings,
    *,
    queue_name: str = QUEUE_NAME,
    platforms: Mapping[str, StorePlatform] | None = None,
) -> WorkerSettings:
    """arq settings for a worker of every registered job; needs `settings.redis_url`.

    The worker builds one HTTP client and every installed platform on it at startup (a broken
    plugin fails the startup), unless `platforms` are given.
    """
    if settings.redis_url is None:
        raise ValueError("the worker needs Redis: set KIZUKI_REDIS_URL (e.g. redis://127.0.0.1)")

    async def on_startup(ctx: dict[str, object]) -> None:
        redis = ctx["redis"]  # arq's own client, already connected
        if not isinstance(redis, ArqRedis):
            raise TypeError(f"arq gave ctx['redis'] as {type(redis).__name__}")
        engine = create_engine(settings.database_url, pool_size=settings.pool_size)
        http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS)
        ctx.update(
            http=http,
            platforms=platforms if platforms is not None else build_platforms(http),
            engine=engine,
            settings=settings,
            sessions=session_factory(engine),
            events=RedisEventBus(redis),
            job_queue=ArqJobQueue(redis, queue_name=queue_name),
        )

    async def on_shutdown(ctx: dict[str, object]) -> None:
        engine = ctx.pop("engine", None)
        if isinstance(engine, AsyncEngine):
            await engine.dispose()
        http = ctx.pop("http", None)
        if isinstance(http, httpx.AsyncClient):
            await http.aclose()

    return WorkerSettings(
        functions=[
            # arq types `ctx` as a plain dict; ours is a TypedDict of that same dict.
            func(cast("WorkerCoroutine", function), name=job.value)
            for job, function in JOB_FUNCTIONS.items()
        ],
        queue_name=queue_name,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        job_serializer=encode_job,
        job_deserializer=decode_job,
        max_jobs=MAX_JOBS,
        job_timeout=JOB_TIMEOUT_SECONDS,
        keep_result=KEEP_RESULT_SECONDS,
        max_tries=MAX_TRIES,
    )


def schedules() -> list[CronJob]:
    """Periodic jobs, the same for arq and the embedded scheduler (`kizuki.scheduler`):

    - every minute, the fan-out of mall syncs to connections whose last sync is older than
      `Settings.sync_interval_minutes` (one job id per connection), and of the daily
      reconciliations due (one job id per connection and UTC day);
    - hourly, the fan-out that gives every shop its nightly risk recompute: only shops not
      yet recomputed since their local midnight, one job id per shop and day.

    Several workers running them, or a run coming late, do no work twice.
    """
    risk = cast("WorkerCoroutine", JOB_FUNCTIONS[Job.SCHEDULE_RISK_RECOMPUTES])
    syncs = cast("WorkerCoroutine", JOB_FUNCTIONS[Job.SCHEDULE_SYNCS])
    return [
        cron(risk, name=f"{CRON_PREFIX}{Job.SCHEDULE_RISK_RECOMPUTES.value}", minute=5),
        cron(syncs, name=f"{CRON_PREFIX}{Job.SCHEDULE_SYNCS.value}", second=0),
    ]


def run_worker(settings: Settings, *, burst: bool = False, queue_name: str = QUEUE_NAME) -> None:
    """Run a worker until SIGINT or SIGTERM (with `burst`, until the queue is empty).

    A burst worker only drains the queue: it runs no periodic jobs.
    """
    run_async(_work(worker_settings(settings, queue_name=queue_name), burst=burst))


async def _work(settings: WorkerSettings, *, burst: bool) -> None:
    worker = Worker(**settings, burst=burst, cron_jobs=None if burst else schedules())
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        # arq stops on a signal by cancelling its own main task; only that ends quietly.
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    finally:
        await worker.close()
