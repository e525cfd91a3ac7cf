"""Worker contexts for tests: what `workers.main` gives a job, around the test's sessions."""

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.events import EventBus
from domain.jobs import JobQueue
from domain.platforms import StorePlatform
from domain.settings import Settings
from kizuki.events import InProcessEventBus
from workers.context import WorkerContext


def make_worker_context(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    job_queue: JobQueue,
    platforms: Mapping[str, StorePlatform] | None = None,
    events: EventBus | None = None,
    job_try: int = 1,
) -> WorkerContext:
    return WorkerContext(
        settings=settings,
        sessions=sessions,
        events=InProcessEventBus() if events is None else events,
        job_queue=job_queue,
        platforms={} if platforms is None else platforms,
        job_id="test",
        job_try=job_try,
    )
