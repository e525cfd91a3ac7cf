"""The runtime one `kizuki serve` process needs, in either shape.

Embedded (no Redis configured): in-process event bus and job runner on the server's own loop.
Production: Redis pub/sub events and the arq queue, shared with every API and worker process.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from domain.db import AsyncSession, create_engine, session_factory
from domain.events import EventBus
from domain.jobs import JobQueue
from domain.settings import Settings
from kizuki.events import InProcessEventBus, RedisEventBus
from kizuki.jobs import ArqJobQueue, create_arq_pool
from workers.inprocess import build_inprocess_job_queue

# How long a stopping embedded server lets running jobs finish.
SHUTDOWN_GRACE_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Runtime:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    events: EventBus
    job_queue: JobQueue


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Engine, event bus and job queue for one server process; all closed on exit."""
    engine = create_engine(settings.database_url, pool_size=settings.pool_size)
    sessions = session_factory(engine)
    try:
        if settings.redis_url:
            pool = await create_arq_pool(settings.redis_url)
            try:
                yield Runtime(engine, sessions, RedisEventBus(pool), ArqJobQueue(pool))
            finally:
                await pool.aclose()
        else:
            events = InProcessEventBus()
            queue = build_inprocess_job_queue(settings, sessions, events)
            try:
                yield Runtime(engine, sessions, events, queue)
            finally:
                await queue.aclose(grace_seconds=SHUTDOWN_GRACE_SECONDS)
    finally:
        await engine.dispose()
