"""The embedded shape's job runner: the worker's jobs on the API process's own event loop."""

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.events import EventBus
from domain.platforms import StorePlatform
from domain.settings import Settings
from kizuki.jobs import InProcessJobQueue
from workers.context import WorkerContext
from workers.registry import JOB_FUNCTIONS, JOB_TIMEOUT_SECONDS, MAX_TRIES

# SQLite takes one writer at a time; more concurrent jobs would only queue on its lock.
MAX_JOBS = 4


def build_inprocess_job_queue(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    events: EventBus,
    platforms: Mapping[str, StorePlatform],
    *,
    max_jobs: int = MAX_JOBS,
) -> InProcessJobQueue[WorkerContext]:
    """A job queue that runs every registered job in this process; close it with `aclose()`."""

    def context(job_id: str, job_try: int) -> WorkerContext:
        return WorkerContext(
            settings=settings,
            sessions=sessions,
            events=events,
            job_queue=queue,
            platforms=platforms,
            job_id=job_id,
            job_try=job_try,
        )

    queue = InProcessJobQueue(
        JOB_FUNCTIONS,
        context,
        max_jobs=max_jobs,
        max_tries=MAX_TRIES,
        job_timeout=JOB_TIMEOUT_SECONDS,
    )
    return queue
