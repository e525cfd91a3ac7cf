from collections.abc import AsyncIterator, Callable

import pytest
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.jobs import JobQueue, JobRequest
from domain.settings import Settings
from kizuki.jobs import create_arq_pool
from tests.factories.worker import make_worker_context
from workers.context import WorkerContext


class RecordingJobQueue:
    """A `JobQueue` that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[JobRequest] = []

    async def send(self, requests: list[JobRequest]) -> None:
        self.sent.extend(requests)


_: Callable[[], JobQueue] = RecordingJobQueue


@pytest.fixture
def recording_queue() -> RecordingJobQueue:
    return RecordingJobQueue()


@pytest.fixture
def worker_context(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    recording_queue: RecordingJobQueue,
) -> WorkerContext:
    return make_worker_context(settings, sessions, job_queue=recording_queue)


@pytest.fixture
def queue_name(unique: str) -> str:
    """An arq queue of this test alone, so parallel runs on one Redis never share jobs."""
    return f"kizuki-test:{unique}:jobs"


@pytest.fixture
async def arq_pool(redis_available: str, queue_name: str, unique: str) -> AsyncIterator[ArqRedis]:
    pool = await create_arq_pool(redis_available)
    yield pool
    # Remove only this test's keys: its queue, its worker's health key, its jobs' state.
    keys: list[str | bytes] = [queue_name, f"{queue_name}:health-check"]
    for member in await pool.zrange(queue_name, 0, -1):
        job_id = member.decode()
        keys += [f"arq:{kind}:{job_id}" for kind in ("job", "retry", "in-progress", "result")]
    keys += [key async for key in pool.scan_iter(f"arq:*{unique}*")]
    await pool.delete(*keys)
    await pool.aclose()
