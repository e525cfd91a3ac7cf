import json
import math
import uuid
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.errors import InvalidInput, ShopNotFound
from domain.ids import CustomerId, ShopId
from domain.jobs import Job
from domain.risk.bands import Band
from domain.risk.models import ShopRiskModel
from domain.risk.schedule import request_rescore, schedule_recomputes
from domain.risk.service import recompute_risk, recompute_shop_risk
from domain.risk.state import load_state
from tests.domain.risk.shops import (
    AS_OF,
    RecordingJobs,
    add_customer,
    add_order,
    comparable,
    current_scores,
    edge_case_shop,
    history_rows,
    stored_now,
)
from tests.factories.shop import make_shop

SCORED = {Band.LOW, Band.MEDIUM, Band.HIGH, Band.CRITICAL}


async def test_every_customer_gets_a_current_score_and_a_history_row(
    session: AsyncSession,
) -> None:
    edge = await edge_case_shop(session)

    run = await recompute_risk(session, ShopId(edge.shop.id), as_of=AS_OF)

    scores = await current_scores(session, edge.shop)
    assert set(scores) == {customer.id for customer in edge.customers.values()}
    assert run.customers == len(edge.customers)
    assert run.scored == len(edge.customers) - 2
    for name in ("none", "cancelled"):
        score = scores[edge.id_of(name)]
        assert score.band == Band.UNSCORED
        assert score.probability is None
        assert score.expected_purchases is None
        assert score.reasons == []
    for name in ("one", "same_day", "refunded", "zero", "regular0"):
        score = scores[edge.id_of(name)]
        assert score.probability is not None
        assert 0.0 < score.probability < 1.0
        assert score.expected_purchases is not None
        assert math.isfinite(score.expected_purchases)
        assert score.band in SCORED
        assert score.as_of == AS_OF
        assert score.horizon_days == 90
        assert score.model_version == run.model_version
        assert [reason["sign"] for reason in score.reasons] == ["interval", "basket"] or [
            reason["sign"] for reason in score.reasons
        ] == ["basket", "interval"]
    # Same-day orders are one purchase occasion; evidence says so.
    same_day = scores[edge.id_of("same_day")].reasons
    interval = next(reason for reason in same_day if reason["sign"] == "interval")
    assert interval["evidence"]["orders"] == 1
    history = await history_rows(session, edge.shop)
    assert sorted(comparable(row) for row in history) == sorted(
        comparable(score) for score in scores.values()
    )


async def test_a_rerun_changes_nothing_and_announces_nothing(session: AsyncSession) -> None:
    edge = await edge_case_shop(session)
    shop_id = ShopId(edge.shop.id)
    first_jobs, second_jobs = RecordingJobs(), RecordingJobs()

    await recompute_risk(session, shop_id, as_of=AS_OF, jobs=first_jobs)
    before = sorted(comparable(s) for s in (await current_scores(session, edge.shop)).values())
    history_before = [comparable(row) for row in await history_rows(session, edge.shop)]
    ids_before = [row.id for row in await history_rows(session, edge.shop)]
    await recompute_risk(session, shop_id, as_of=AS_OF, jobs=second_jobs)

    after = sorted(comparable(s) for s in (await current_scores(session, edge.shop)).values())
    history_after = await history_rows(session, edge.shop)
    assert after == before
    assert [comparable(row) for row in history_after] == history_before
    assert [row.id for row in history_after] == ids_before
    assert len(first_jobs.events()) == len(edge.customers)
    assert second_jobs.events() == []


async def test_later_orders_and_customers_play_no_part(session: AsyncSession) -> None:
    edge = await edge_case_shop(session)
    shop_id = ShopId(edge.shop.id)
    await recompute_risk(session, shop_id, as_of=AS_OF)
    before = await stored_now(session, edge.shop)
    late = await add_customer(session, edge.shop, edge.connection, "late")
    late.created_at = AS_OF + timedelta(days=1)
    await add_order(session, late, edge.connection, at=AS_OF + timedelta(days=2))
    await add_order(session, edge.customers["one"], edge.connection, at=AS_OF + timedelta(hours=1))
    await session.flush()
    earlier = AS_OF - timedelta(days=1)
    await recompute_risk(session, shop_id, as_of=earlier)
    await recompute_risk(session, shop_id, as_of=AS_OF)

    after = await stored_now(session, edge.shop)
    assert late.id not in after
    assert after == before
    history = await history_rows(session, edge.shop)
    assert {row.as_of for row in history} == {earlier, AS_OF}


async def test_a_backfill_adds_history_but_keeps_the_newer_current_score(
    session: AsyncSession,
) -> None:
    edge = await edge_case_shop(session)
    shop_id = ShopId(edge.shop.id)
    await recompute_risk(session, shop_id, as_of=AS_OF)
    fitted = await load_state(session, shop_id)

    await recompute_risk(session, shop_id, as_of=AS_OF - timedelta(days=30))

    scores = await current_scores(session, edge.shop)
    assert {score.as_of for score in scores.values()} == {AS_OF}
    assert len(await history_rows(session, edge.shop)) == 2 * len(edge.customers)
    state = await load_state(session, shop_id)
    assert fitted is not None
    assert state is not None
    assert state.as_of == AS_OF
    assert state.model.version == fitted.model.version


async def test_risk_grows_with_silence(session: AsyncSession) -> None:
    edge = await edge_case_shop(session)
    shop_id = ShopId(edge.shop.id)
    customer = edge.id_of("one")
    probabilities = []
    for days in (0, 30, 90):
        await recompute_risk(session, shop_id, as_of=AS_OF + timedelta(days=days))
        probability = (await current_scores(session, edge.shop))[customer].probability
        assert probability is not None
        probabilities.append(probability)

    assert probabilities == sorted(probabilities)
    assert probabilities[0] < probabilities[-1]


async def test_an_empty_shop_recomputes_to_nothing(session: AsyncSession) -> None:
    shop = await make_shop(session)

    run = await recompute_risk(session, ShopId(shop.id), as_of=AS_OF)

    assert (run.customers, run.scored, run.band_changes) == (0, 0, 0)
    assert await current_scores(session, shop) == {}
    assert await load_state(session, ShopId(shop.id)) is not None


async def test_other_shops_are_untouched(session: AsyncSession) -> None:
    mine = await edge_case_shop(session, regulars=2)
    theirs = await edge_case_shop(session, regulars=2)

    await recompute_risk(session, ShopId(mine.shop.id), as_of=AS_OF)

    assert await current_scores(session, theirs.shop) == {}
    assert await history_rows(session, theirs.shop) == []


async def test_bad_input_is_refused_before_anything_is_written(session: AsyncSession) -> None:
    edge = await edge_case_shop(session, regulars=1)

    with pytest.raises(InvalidInput, match="time zone"):
        await recompute_risk(session, ShopId(edge.shop.id), as_of=AS_OF.replace(tzinfo=None))
    with pytest.raises(ShopNotFound):
        await recompute_risk(session, ShopId(edge.connection.id), as_of=AS_OF)
    assert await current_scores(session, edge.shop) == {}


async def test_the_demo_hook_commits_its_own_unit_of_work(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    edge = await edge_case_shop(session, regulars=2)
    await session.commit()

    run = await recompute_shop_risk(sessions, ShopId(edge.shop.id), as_of=AS_OF)

    async with sessions() as other:
        stored = await current_scores(other, edge.shop)
    assert len(stored) == run.customers == len(edge.customers)


def test_rescoring_is_requested_in_batches() -> None:
    jobs = RecordingJobs()
    shop_id = ShopId(uuid.uuid4())
    ids = [CustomerId(uuid.uuid4()) for _ in range(1200)]

    count = request_rescore(jobs, shop_id, [*ids, ids[0]])

    assert count == 3
    assert [job for job, _, _ in jobs.enqueued] == [Job.RESCORE_CUSTOMERS] * 3
    sent = [json.loads(str(kwargs["customer_ids_json"])) for _, _, kwargs in jobs.enqueued]
    assert [len(batch) for batch in sent] == [500, 500, 200]
    assert sorted(value for batch in sent for value in batch) == sorted(str(i) for i in ids)


async def test_nightly_schedule_enqueues_each_shop_once_a_day(session: AsyncSession) -> None:
    edge = await edge_case_shop(session, regulars=1)
    other = await make_shop(session)
    jobs = RecordingJobs()
    now = AS_OF + timedelta(hours=3)  # noon in Tokyo

    await schedule_recomputes(session, jobs, now=now)
    mine = [kwargs for _, _, kwargs in jobs.enqueued if kwargs["shop_id"] == str(edge.shop.id)]
    assert len(mine) == 1
    assert mine[0]["as_of"] == "2025-05-31T15:00:00+00:00"
    assert any(kwargs["shop_id"] == str(other.id) for _, _, kwargs in jobs.enqueued)
    job_ids = {job_id for _, job_id, _ in jobs.enqueued}
    assert f"recompute_shop_risk:{edge.shop.id}:2025-05-31T15:00:00+00:00" in job_ids

    await recompute_risk(session, ShopId(edge.shop.id), now=now)
    again = RecordingJobs()
    await schedule_recomputes(session, again, now=now)
    assert all(kwargs["shop_id"] != str(edge.shop.id) for _, _, kwargs in again.enqueued)
    row = await session.get(ShopRiskModel, edge.shop.id)
    assert row is not None
    assert row.fitted_as_of == AS_OF - timedelta(hours=9)
