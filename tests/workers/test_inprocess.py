import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.events import Event, Topic
from domain.jobs import Job, JobBuffer
from domain.settings import Settings
from domain.shop.models import Shop
from kizuki.events import InProcessEventBus
from kizuki.jobs import InProcessJobQueue
from tests.kizuki.subscribers import listening
from workers.context import WorkerContext
from workers.inprocess import build_inprocess_job_queue


@pytest.fixture
def bus() -> InProcessEventBus:
    return InProcessEventBus()


@pytest.fixture
async def queue(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], bus: InProcessEventBus
) -> AsyncIterator[InProcessJobQueue[WorkerContext]]:
    queue = build_inprocess_job_queue(settings, sessions, bus, {})
    yield queue
    await queue.aclose(grace_seconds=5)


async def test_ping_runs_in_process_after_commit_and_reaches_a_subscriber(
    shop: Shop, bus: InProcessEventBus, queue: InProcessJobQueue[WorkerContext]
) -> None:
    jobs = JobBuffer(queue)

    async with listening(bus, shop.id, Topic.PING, lambda: _count(bus, shop)) as listener:
        jobs.enqueue(Job.PING, _job_id=f"ping:{shop.id}", shop_id=str(shop.id))
        await jobs.flush()
        await queue.drain()

        event = await listener.next()

    assert event.shop_id == shop.id
    assert event.data["shop"] == shop.name
    assert (event.data["job_id"], event.data["job_try"]) == (f"ping:{shop.id}", 1)
    assert not queue.failures


async def test_publish_event_job_publishes_and_bad_arguments_fail_only_their_job(
    shop: Shop, bus: InProcessEventBus, queue: InProcessJobQueue[WorkerContext]
) -> None:
    jobs = JobBuffer(queue)
    data: dict[str, str | int | float | bool | None] = {"customers": 3, "label": "定期便"}

    async with listening(
        bus, shop.id, Topic.RISK_CHANGED, lambda: _count(bus, shop, Topic.RISK_CHANGED)
    ) as listener:
        jobs.enqueue(Job.PUBLISH_EVENT, shop_id=str(shop.id), topic="no.such.topic", data_json="{}")
        jobs.enqueue(Job.PUBLISH_EVENT, shop_id=str(shop.id), topic="risk.changed", data_json="[1]")
        jobs.enqueue(
            Job.PUBLISH_EVENT,
            shop_id=str(shop.id),
            topic=Topic.RISK_CHANGED.value,
            data_json=json.dumps(data),
        )
        await jobs.flush()
        await queue.drain()

        assert await listener.next() == Event(shop.id, Topic.RISK_CHANGED, data)
        await listener.assert_nothing_more()

    assert len(queue.failures) == 2
    assert all(failure.request.job is Job.PUBLISH_EVENT for failure in queue.failures)
    assert any("'no.such.topic' is not a valid Topic" in f.error for f in queue.failures)


async def _count(bus: InProcessEventBus, shop: Shop, topic: Topic = Topic.PING) -> int:
    return bus.subscriber_count(shop.id, topic)
