"""The runtime one `kizuki serve` process needs, in either shape.

Embedded (no Redis configured): in-process event bus, job runner and cron scheduler on the
server's own loop. Production: Redis pub/sub events and the arq queue, shared with every API
and worker process (the arq workers run the cron). Both build one HTTP client and every
installed store platform on it; a broken platform plugin fails the start, loudly.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from domain.db import AsyncSession, create_engine, session_factory
from domain.events import EventBus
from domain.jobs import JobQueue
from domain.platforms import StorePlatform
from domain.settings import Settings
from integrations import build_platforms
from kizuki.events import InProcessEventBus, RedisEventBus
from kizuki.jobs import ArqJobQueue, create_arq_pool
from kizuki.scheduler import CronScheduler
from workers.inprocess import build_inprocess_job_queue
from workers.main import HTTP_TIMEOUT_SECONDS, schedules

# How long a stopping embedded server lets running jobs finish.
SHUTDOWN_GRACE_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Runtime:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    events: EventBus
    job_queue: JobQueue
    platforms: Mapping[str, StorePlatform]


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, platforms: Mapping[str, StorePlatform] | None = None
) -> AsyncIterator[Runtime]:
    """Engine, HTTP client, platforms, event bus and job queue (plus, embedded, the cron
    scheduler) for one server process; all closed on exit. `platforms` replace the installed
    ones (tests)."""
    engine = create_engine(settings.database_url, pool_size=settings.pool_size)
    sessions = session_factory(engine)
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS)
    try:
        found = platforms if platforms is not None else build_platforms(http)
        if settings.redis_url:
            pool = await create_arq_pool(settings.redis_url)
            try:
                yield Runtime(engine, sessions, RedisEventBus(pool), ArqJobQueue(pool), found)
            finally:
                await pool.aclose()
        else:
            events = InProcessEventBus()
            queue = build_inprocess_job_queue(settings, sessions, events, found)
            scheduler = CronScheduler(schedules(), queue)
            scheduler.start()
            try:
                yield Runtime(engine, sessions, events, queue, found)
            finally:
                await scheduler.aclose()
                await queue.aclose(grace_seconds=SHUTDOWN_GRACE_SECONDS)
    finally:
        await http.aclose()
        await engine.dispose()
