import asyncio
import uuid

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.jobs import Job, JobRequest
from domain.shop.service import create_shop, get_shop
from tests.workers.conftest import RecordingJobQueue
from workers.context import WorkerContext, unit_of_work


async def test_unit_of_work_commits_then_sends_its_jobs(
    worker_context: WorkerContext,
    recording_queue: RecordingJobQueue,
    sessions: async_sessionmaker[AsyncSession],
    unique: str,
) -> None:
    async with unit_of_work(worker_context) as uow:
        shop = await create_shop(uow.session, f"uow {unique}")
        uow.jobs.enqueue(Job.PING, _job_id=f"ping:{shop.id}", shop_id=str(shop.id))
        assert recording_queue.sent == []

    assert recording_queue.sent == [
        JobRequest(Job.PING, {"shop_id": str(shop.id)}, f"ping:{shop.id}")
    ]
    async with sessions() as check:
        assert await get_shop(check, shop.id) is not None


async def test_unit_of_work_rolls_back_and_drops_its_jobs_on_error(
    worker_context: WorkerContext,
    recording_queue: RecordingJobQueue,
    sessions: async_sessionmaker[AsyncSession],
    unique: str,
) -> None:
    created: list[uuid.UUID] = []

    async def job_body() -> None:
        async with unit_of_work(worker_context) as uow:
            created.append((await create_shop(uow.session, f"uow {unique}")).id)
            uow.jobs.enqueue(Job.PING, shop_id=str(created[0]))
            raise RuntimeError("platform said no")

    with pytest.raises(RuntimeError, match="platform said no"):
        await job_body()

    assert recording_queue.sent == []
    async with sessions() as check:
        assert await get_shop(check, created[0]) is None


async def test_cancelled_unit_of_work_writes_and_sends_nothing(
    worker_context: WorkerContext,
    recording_queue: RecordingJobQueue,
    sessions: async_sessionmaker[AsyncSession],
    unique: str,
) -> None:
    created: list[uuid.UUID] = []
    wrote = asyncio.Event()

    async def job_body() -> None:
        async with unit_of_work(worker_context) as uow:
            created.append((await create_shop(uow.session, f"uow {unique}")).id)
            uow.jobs.enqueue(Job.PING, shop_id=str(created[0]))
            wrote.set()
            await asyncio.Event().wait()  # until cancelled, e.g. by a job timeout

    task = asyncio.create_task(job_body())
    await wrote.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert recording_queue.sent == []
    async with sessions() as check:
        assert await get_shop(check, created[0]) is None


async def test_unit_of_work_can_scope_its_session_to_one_shop(
    worker_context: WorkerContext,
) -> None:
    shop_id = uuid.uuid4()

    async with unit_of_work(worker_context, shop_id=shop_id) as uow:
        assert uow.session.sync_session.info["shop_id"] == shop_id
