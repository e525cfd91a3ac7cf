import asyncio
import json
import sys
from pathlib import Path

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.events import Event, Topic
from domain.jobs import Job, JobRequest
from domain.settings import Settings
from domain.shop.models import Shop
from kizuki.events import RedisEventBus
from kizuki.jobs import ArqJobQueue
from tests.kizuki.subscribers import listening, redis_subscribers
from workers.main import WorkerSettings, worker_settings

ROOT = Path(__file__).resolve().parents[2]

# arq's Worker.close() still calls redis-py's deprecated close(); that is arq's to change.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Call to deprecated close:DeprecationWarning",
)


@pytest.fixture
def redis_settings(settings: Settings, redis_available: str) -> Settings:
    return settings.model_copy(update={"redis_url": redis_available})


def burst_worker(
    settings: Settings, queue_name: str, sessions: async_sessionmaker[AsyncSession]
) -> Worker:
    """The production worker settings, but jobs use the test's sessions (its transaction)."""
    production = worker_settings(settings, queue_name=queue_name)

    async def on_startup(ctx: dict[str, object]) -> None:
        redis = ctx["redis"]
        assert isinstance(redis, ArqRedis)
        ctx.update(
            settings=settings,
            sessions=sessions,
            events=RedisEventBus(redis),
            job_queue=ArqJobQueue(redis, queue_name=queue_name),
        )

    async def on_shutdown(ctx: dict[str, object]) -> None:
        return None

    test_settings: WorkerSettings = {
        **production,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        # One job at a time: every session of a test shares the test's one connection.
        "max_jobs": 1,
    }
    return Worker(**test_settings, burst=True, handle_signals=False, poll_delay=0.05)


async def run_burst(worker: Worker) -> int:
    try:
        await asyncio.wait_for(worker.async_run(), timeout=30)
    finally:
        await worker.close()
    assert worker.jobs_failed == 0
    return worker.jobs_complete


async def test_ping_sent_through_arq_reaches_a_redis_subscriber(
    shop: Shop,
    redis_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    arq_pool: ArqRedis,
    queue_name: str,
) -> None:
    bus = RedisEventBus(arq_pool)
    subscribers = redis_subscribers(arq_pool, shop.id, Topic.PING)

    async with listening(bus, shop.id, Topic.PING, subscribers) as listener:
        await ArqJobQueue(arq_pool, queue_name=queue_name).send(
            [JobRequest(Job.PING, {"shop_id": str(shop.id)})]
        )
        assert await run_burst(burst_worker(redis_settings, queue_name, sessions)) == 1

        event = await listener.next()

    assert (event.shop_id, event.topic, event.data["shop"]) == (shop.id, Topic.PING, shop.name)
    assert event.data["job_try"] == 1
    assert await arq_pool.exists(queue_name, f"arq:job:{event.data['job_id']}") == 0


async def test_same_job_id_runs_once_while_queued_then_again_once_done(
    shop: Shop,
    redis_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    arq_pool: ArqRedis,
    queue_name: str,
    unique: str,
) -> None:
    queue = ArqJobQueue(arq_pool, queue_name=queue_name)
    ping = JobRequest(Job.PING, {"shop_id": str(shop.id)}, f"ping:{unique}")
    bus = RedisEventBus(arq_pool)
    subscribers = redis_subscribers(arq_pool, shop.id, Topic.PING)

    async with listening(bus, shop.id, Topic.PING, subscribers) as listener:
        await queue.send([ping, ping])
        await queue.send([ping])
        assert await run_burst(burst_worker(redis_settings, queue_name, sessions)) == 1
        assert (await listener.next()).data["job_id"] == f"ping:{unique}"
        await listener.assert_nothing_more()

        # No result is kept, so once the job is done the same id is new work.
        await queue.send([ping])
        assert await run_burst(burst_worker(redis_settings, queue_name, sessions)) == 1
        assert (await listener.next()).data["job_id"] == f"ping:{unique}"

    assert await arq_pool.exists(queue_name, f"arq:job:ping:{unique}") == 0


WORKER = """
import sys
from domain.settings import Settings
from workers.main import run_worker

database_url, redis_url, queue_name = sys.argv[1:]
settings = Settings(_env_file=None, database_url=database_url, redis_url=redis_url)
run_worker(settings, burst=True, queue_name=queue_name)
"""


async def test_run_worker_runs_queued_jobs_in_its_own_process(
    shop: Shop, redis_settings: Settings, arq_pool: ArqRedis, queue_name: str
) -> None:
    assert redis_settings.redis_url is not None
    bus = RedisEventBus(arq_pool)
    data: dict[str, str | int | float | bool | None] = {"n": 1, "note": "from the worker"}

    async with listening(
        bus, shop.id, Topic.SYNC_PROGRESS, redis_subscribers(arq_pool, shop.id, Topic.SYNC_PROGRESS)
    ) as listener:
        await ArqJobQueue(arq_pool, queue_name=queue_name).send(
            [
                JobRequest(
                    Job.PUBLISH_EVENT,
                    {
                        "shop_id": str(shop.id),
                        "topic": Topic.SYNC_PROGRESS.value,
                        "data_json": json.dumps(data),
                    },
                )
            ]
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            redis_settings.database_url,
            redis_settings.redis_url,
            queue_name,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=45)
        assert process.returncode == 0, stderr.decode()

        assert await listener.next() == Event(shop.id, Topic.SYNC_PROGRESS, data)

    assert await arq_pool.exists(queue_name, f"{queue_name}:health-check") == 0


async def test_worker_startup_fills_the_context_and_shutdown_disposes_it(
    redis_settings: Settings, arq_pool: ArqRedis, queue_name: str
) -> None:
    production = worker_settings(redis_settings, queue_name=queue_name)
    ctx: dict[str, object] = {"redis": arq_pool}

    await production["on_startup"](ctx)
    try:
        assert ctx["settings"] is redis_settings
        assert isinstance(ctx["events"], RedisEventBus)
        assert isinstance(ctx["job_queue"], ArqJobQueue)
        sessions = ctx["sessions"]
        assert isinstance(sessions, async_sessionmaker)
        async with sessions() as session:
            assert (await session.exec(text("select 1"))).scalar_one() == 1
    finally:
        await production["on_shutdown"](ctx)

    assert "engine" not in ctx
