import json
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.jobs import Job
from domain.risk.bands import Band
from tests.domain.risk.shops import AS_OF, add_order, current_scores, edge_case_shop
from tests.workers.conftest import RecordingJobQueue
from workers.context import WorkerContext
from workers.risk import recompute_shop_risk, rescore_customers, schedule_risk_recomputes


def _events(queue: RecordingJobQueue) -> list[dict[str, object]]:
    return [
        json.loads(str(request.kwargs["data_json"]))
        for request in queue.sent
        if request.job is Job.PUBLISH_EVENT and request.kwargs["topic"] == "risk.changed"
    ]


async def test_recompute_job_stores_scores_then_announces_them(
    worker_context: WorkerContext,
    recording_queue: RecordingJobQueue,
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    edge = await edge_case_shop(session, regulars=3)
    await session.commit()

    await recompute_shop_risk(worker_context, shop_id=str(edge.shop.id), as_of=AS_OF.isoformat())

    async with sessions() as check:
        scores = await current_scores(check, edge.shop)
    assert len(scores) == len(edge.customers)
    announced = {event["customer_id"]: event["band"] for event in _events(recording_queue)}
    assert announced == {str(key): score.band for key, score in scores.items()}


async def test_rescore_job_updates_the_touched_customer(
    worker_context: WorkerContext,
    recording_queue: RecordingJobQueue,
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    edge = await edge_case_shop(session, regulars=3)
    await session.commit()
    await recompute_shop_risk(worker_context, shop_id=str(edge.shop.id), as_of=AS_OF.isoformat())
    recording_queue.sent.clear()
    customer = edge.customers["none"]
    await add_order(session, customer, edge.connection, at=AS_OF + timedelta(hours=1))
    await session.commit()

    await rescore_customers(
        worker_context, shop_id=str(edge.shop.id), customer_ids_json=json.dumps([str(customer.id)])
    )

    async with sessions() as check:
        score = (await current_scores(check, edge.shop))[customer.id]
    assert score.band != Band.UNSCORED
    assert score.probability is not None
    assert [event["customer_id"] for event in _events(recording_queue)] == [str(customer.id)]
    assert _events(recording_queue)[0]["previous_band"] == "unscored"


async def test_a_malformed_rescore_job_fails_without_side_effects(
    worker_context: WorkerContext, recording_queue: RecordingJobQueue, session: AsyncSession
) -> None:
    edge = await edge_case_shop(session, regulars=1)
    await session.commit()

    with pytest.raises(InvalidInput):
        await rescore_customers(worker_context, shop_id=str(edge.shop.id), customer_ids_json="{}")

    assert recording_queue.sent == []


async def test_schedule_job_enqueues_a_recompute_per_shop(
    worker_context: WorkerContext, recording_queue: RecordingJobQueue, session: AsyncSession
) -> None:
    edge = await edge_case_shop(session, regulars=1)
    await session.commit()

    await schedule_risk_recomputes(worker_context)

    shops = [
        request.kwargs["shop_id"]
        for request in recording_queue.sent
        if request.job is Job.RECOMPUTE_SHOP_RISK
    ]
    assert str(edge.shop.id) in shops
    assert all(request.job_id is not None for request in recording_queue.sent)
