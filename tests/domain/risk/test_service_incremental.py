import uuid
from datetime import timedelta

import pytest

from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.ids import ShopId
from domain.jobs import Job
from domain.order.models import OrderStatus
from domain.risk.bands import Band, BandThresholds, get_band_thresholds, set_band_thresholds
from domain.risk.reasons import sign_mask
from domain.risk.schedule import parse_customer_ids
from domain.risk.service import recompute_risk, rescore_customers
from domain.risk.signs import SHOWN_AT, Sign
from tests.domain.risk.shops import (
    AS_OF,
    RecordingJobs,
    add_order,
    current_scores,
    edge_case_shop,
    history_rows,
    stored_now,
)


async def test_a_new_order_rescores_that_customer_only(session: AsyncSession) -> None:
    edge = await edge_case_shop(session)
    shop_id = ShopId(edge.shop.id)
    await recompute_risk(session, shop_id, as_of=AS_OF)
    before = await stored_now(session, edge.shop)
    customer = edge.customers["one"]
    await add_order(session, customer, edge.connection, at=AS_OF + timedelta(hours=2))
    later = AS_OF + timedelta(hours=3)

    run = await rescore_customers(session, shop_id, [customer.id], as_of=later)

    scores = await current_scores(session, edge.shop)
    after = await stored_now(session, edge.shop)
    assert (run.customers, run.scored, run.fitted) == (1, 1, False)
    assert scores[customer.id].as_of == later
    old, new = before[customer.id][1], scores[customer.id].probability
    assert old is not None
    assert new is not None
    assert new < old
    interval = next(r for r in scores[customer.id].reasons if r["sign"] == "interval")
    assert interval["evidence"]["orders"] == 2
    others = {k: v for k, v in after.items() if k != customer.id}
    assert others == {k: v for k, v in before.items() if k != customer.id}
    history = await history_rows(session, edge.shop)
    assert [row.as_of for row in history if row.customer_id == customer.id] == [AS_OF, later]
    assert len(history) == len(edge.customers) + 1


async def test_rescoring_untouched_customers_reproduces_the_full_run(
    session: AsyncSession,
) -> None:
    edge = await edge_case_shop(session)
    shop_id = ShopId(edge.shop.id)
    await recompute_risk(session, shop_id, as_of=AS_OF)
    full = await stored_now(session, edge.shop)
    ids = [edge.id_of(name) for name in ("one", "zero", "none", "cancelled", "regular3")]

    run = await rescore_customers(session, shop_id, ids, as_of=AS_OF)

    assert not run.fitted
    assert await stored_now(session, edge.shop) == full


async def test_a_band_change_is_announced_after_the_commit(session: AsyncSession) -> None:
    edge = await edge_case_shop(session)
    shop_id = ShopId(edge.shop.id)
    await recompute_risk(session, shop_id, as_of=AS_OF)
    customer = edge.customers["one"]
    probability = (await current_scores(session, edge.shop))[customer.id].probability
    # Thresholds that put this customer's new, lower risk in another band.
    assert probability is not None
    medium = probability - 0.01
    await set_band_thresholds(session, shop_id, BandThresholds(medium, medium + 0.005, 0.999))
    assert (await current_scores(session, edge.shop))[customer.id].band == Band.HIGH
    for hours in (1, 2):
        await add_order(session, customer, edge.connection, at=AS_OF + timedelta(hours=hours))
    jobs = RecordingJobs()

    await rescore_customers(
        session, shop_id, [customer.id], as_of=AS_OF + timedelta(days=1), jobs=jobs
    )

    after = (await current_scores(session, edge.shop))[customer.id]
    assert after.band != Band.HIGH
    assert jobs.events() == [
        {
            "customer_id": str(customer.id),
            "band": after.band,
            "previous_band": "high",
            "probability": after.probability,
            "top_sign": after.reasons[0]["sign"],
            "signs": ",".join(r["sign"] for r in after.reasons if r["strength"] >= SHOWN_AT),
            "changed": 1,
            "as_of": (AS_OF + timedelta(days=1)).isoformat(),
        }
    ]
    assert all(job is Job.PUBLISH_EVENT for job, _, _ in jobs.enqueued)
    quiet = RecordingJobs()
    await rescore_customers(
        session, shop_id, [customer.id], as_of=AS_OF + timedelta(days=1), jobs=quiet
    )
    assert quiet.events() == []


async def test_a_full_run_announces_each_change_with_its_top_and_shown_signs(
    session: AsyncSession,
) -> None:
    edge = await edge_case_shop(session)
    jobs = RecordingJobs()

    await recompute_risk(session, ShopId(edge.shop.id), as_of=AS_OF, jobs=jobs)

    scores = await current_scores(session, edge.shop)
    events = {uuid.UUID(event["customer_id"]): event for event in jobs.events()}
    # A first run: every customer goes from no score to a band.
    assert set(events) == set(scores)
    shown_somewhere = False
    for customer_id, score in scores.items():
        event = events[customer_id]
        shown = [r["sign"] for r in score.reasons if r["strength"] >= SHOWN_AT]
        shown_somewhere |= bool(shown)
        assert (event["previous_band"], event["band"]) == (None, score.band)
        assert event["top_sign"] == (score.reasons[0]["sign"] if score.reasons else None)
        assert event["signs"] == ",".join(shown)
        assert score.shown_signs == sign_mask(Sign[name.upper()] for name in shown)
        assert event["probability"] == score.probability
    assert shown_somewhere


async def test_rescoring_without_a_stored_fit_recomputes_the_shop(
    session: AsyncSession,
) -> None:
    edge = await edge_case_shop(session)

    run = await rescore_customers(session, ShopId(edge.shop.id), [edge.id_of("one")], as_of=AS_OF)

    assert run.fitted
    assert run.customers == len(edge.customers)
    assert len(await current_scores(session, edge.shop)) == len(edge.customers)


async def test_unknown_and_foreign_customers_are_skipped(session: AsyncSession) -> None:
    mine = await edge_case_shop(session, regulars=2)
    theirs = await edge_case_shop(session, regulars=2)
    await recompute_risk(session, ShopId(mine.shop.id), as_of=AS_OF)
    await recompute_risk(session, ShopId(theirs.shop.id), as_of=AS_OF)
    before = await stored_now(session, theirs.shop)

    run = await rescore_customers(
        session,
        ShopId(mine.shop.id),
        [uuid.uuid4(), theirs.id_of("one"), mine.id_of("one")],
        as_of=AS_OF + timedelta(days=1),
    )

    assert run.customers == 1
    assert await stored_now(session, theirs.shop) == before


async def test_a_cancelled_order_leaves_a_customer_unscored(session: AsyncSession) -> None:
    edge = await edge_case_shop(session, regulars=2)
    shop_id = ShopId(edge.shop.id)
    await recompute_risk(session, shop_id, as_of=AS_OF)
    customer = edge.customers["none"]
    await add_order(
        session,
        customer,
        edge.connection,
        at=AS_OF + timedelta(hours=1),
        status=OrderStatus.CANCELLED,
    )

    await rescore_customers(session, shop_id, [customer.id], as_of=AS_OF + timedelta(hours=2))

    score = (await current_scores(session, edge.shop))[customer.id]
    assert (score.band, score.probability, score.reasons) == (Band.UNSCORED, None, [])


async def test_thresholds_rebands_current_scores_and_are_checked(session: AsyncSession) -> None:
    edge = await edge_case_shop(session)
    shop_id = ShopId(edge.shop.id)
    assert await get_band_thresholds(session, shop_id) == BandThresholds()
    await recompute_risk(session, shop_id, as_of=AS_OF)

    not_critical = sum(
        1
        for s in (await current_scores(session, edge.shop)).values()
        if s.probability is not None and s.band != Band.CRITICAL
    )

    changed = await set_band_thresholds(session, shop_id, BandThresholds(0.01, 0.02, 0.03))

    scores = await current_scores(session, edge.shop)
    scored = [s for s in scores.values() if s.probability is not None]
    assert changed == not_critical > 0
    assert {s.band for s in scored} == {Band.CRITICAL}
    assert {s.band for s in scores.values() if s.probability is None} == {Band.UNSCORED}
    assert await get_band_thresholds(session, shop_id) == BandThresholds(0.01, 0.02, 0.03)
    for bad in ((0.5, 0.4, 0.9), (0.0, 0.5, 0.9), (0.2, 0.5, 1.0)):
        with pytest.raises(InvalidInput):
            BandThresholds(*bad)


async def test_rescoring_cannot_go_back_before_the_fit(session: AsyncSession) -> None:
    edge = await edge_case_shop(session, regulars=2)
    shop_id = ShopId(edge.shop.id)
    await recompute_risk(session, shop_id, as_of=AS_OF)
    before = await stored_now(session, edge.shop)

    with pytest.raises(InvalidInput, match="fitted as of") as raised:
        await rescore_customers(
            session, shop_id, [edge.id_of("one")], as_of=AS_OF - timedelta(seconds=1)
        )

    assert raised.value.field == ("as_of",)
    assert await stored_now(session, edge.shop) == before


def test_job_arguments_are_checked() -> None:
    customer = uuid.uuid4()

    assert parse_customer_ids(f'["{customer}"]') == [customer]
    for bad in ("{}", "[1]", "not json", '["nope"]'):
        with pytest.raises(InvalidInput):
            parse_customer_ids(bad)
