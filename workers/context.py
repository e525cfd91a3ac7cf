"""What every job receives (`WorkerContext`) and the one transaction shape of a job body."""

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession, bind_tenant
from domain.events import EventBus
from domain.jobs import JobBuffer, JobQueue
from domain.platforms import StorePlatform
from domain.settings import Settings


class WorkerContext(TypedDict):
    """arq's `ctx` of one job try; the in-process runner builds the same keys."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    events: EventBus
    job_queue: JobQueue
    # Every installed store platform, by name (`integrations.build_platforms`).
    platforms: Mapping[str, StorePlatform]
    # Set per try by arq (and the in-process runner); job_try is 1 on the first try.
    job_id: str
    job_try: int


@dataclass(frozen=True, slots=True)
class UnitOfWork:
    session: AsyncSession
    jobs: JobBuffer


@asynccontextmanager
async def unit_of_work(
    ctx: WorkerContext, *, shop_id: uuid.UUID | None = None
) -> AsyncIterator[UnitOfWork]:
    """One session and job buffer: commit then send the jobs, or roll back and drop them.

    With `shop_id`, every ORM query of the session is also scoped to that shop.
    """
    jobs = JobBuffer(ctx["job_queue"])
    async with ctx["sessions"]() as session:
        if shop_id is not None:
            bind_tenant(session, shop_id)
        try:
            yield UnitOfWork(session, jobs)
        except BaseException:
            # Cancellation too: nothing of an interrupted job may be committed or sent.
            jobs.discard()
            await session.rollback()
            raise
        await session.commit()
    # After the session is closed: no connection is held while talking to the queue.
    await jobs.flush()
