"""History is written on a change: both writers, the same rows."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import numpy as np
import pytest

from domain.db import AsyncSession, utcnow
from domain.ids import ShopId
from domain.risk.writing import ScoreRows, score_writer, write_few
from domain.shop.models import Shop
from tests.domain.risk.shops import AS_OF, current_scores, history_rows
from tests.factories.customer import make_customer
from tests.factories.shop import make_shop

Night = tuple[list[float], list[str]]
Writer = Callable[[AsyncSession, Shop, list[uuid.UUID], Night, int], Awaitable[None]]

NAN = float("nan")


def _rows(ids: list[uuid.UUID], night: Night) -> ScoreRows:
    probability = np.array(night[0], dtype=np.float64)
    return ScoreRows(
        customer_ids=np.array([i.bytes for i in ids], dtype="S16").view("V16"),
        probability=probability,
        expected_purchases=np.nan_to_num(1.0 - probability, nan=NAN),
        expected_spend=np.full(len(ids), 1000.0),
        bands=night[1],
        reasons=["[]"] * len(ids),
        shown=np.zeros(len(ids), dtype=np.int16),
    )


async def _bulk(
    session: AsyncSession, shop: Shop, ids: list[uuid.UUID], night: Night, day: int
) -> None:
    async with score_writer(
        session,
        ShopId(shop.id),
        as_of=AS_OF + timedelta(days=day),
        horizon_days=90,
        model_version="test",
        now=utcnow(),
        keep_changes=10,
    ) as writer:
        await writer.write(_rows(ids, night))


async def _few(
    session: AsyncSession, shop: Shop, ids: list[uuid.UUID], night: Night, day: int
) -> None:
    await write_few(
        session,
        ShopId(shop.id),
        _rows(ids, night),
        as_of=AS_OF + timedelta(days=day),
        horizon_days=90,
        model_version="test",
        now=utcnow(),
    )


def _reversed(write: Writer) -> Writer:
    """`write`, given its customers in descending id order."""

    async def reversed_write(
        session: AsyncSession, shop: Shop, ids: list[uuid.UUID], night: Night, day: int
    ) -> None:
        await write(session, shop, ids[::-1], (night[0][::-1], night[1][::-1]), day)

    return reversed_write


@pytest.mark.parametrize(
    "write",
    [_bulk, _few, _reversed(_bulk)],
    ids=["full-run", "rescoring", "full-run-unsorted"],
)
async def test_history_is_written_on_a_change_measured_from_the_last_row(
    session: AsyncSession, write: Writer
) -> None:
    shop = await make_shop(session)
    ids = [(await make_customer(session, shop=shop, name=f"c{n}")).id for n in range(4)]
    nights: list[Night] = [
        ([0.500, 0.600, 0.740, NAN], ["medium", "medium", "medium", "unscored"]),
        # c1 moves 2 points; c2 crosses into the high band; c0 drifts, c3 stays unscored.
        ([0.505, 0.620, 0.760, NAN], ["medium", "medium", "high", "unscored"]),
        # c0 has now drifted 1.1 points from its last row (0.500), though only 0.6 from
        # yesterday; c3 gets a probability.
        ([0.511, 0.625, 0.765, 0.300], ["medium", "medium", "high", "low"]),
    ]
    for day, night in enumerate(nights, start=1):
        await write(session, shop, ids, night, day)

    rows = await history_rows(session, shop)
    days = {i: [(row.as_of - AS_OF).days for row in rows if row.customer_id == i] for i in ids}
    assert [days[i] for i in ids] == [[1, 3], [1, 2], [1, 2], [1, 3]]
    current = await current_scores(session, shop)
    # The current score is every night's; `recorded_probability` is the last row's.
    assert {score.as_of for score in current.values()} == {AS_OF + timedelta(days=3)}
    assert [current[i].probability for i in ids] == [0.511, 0.625, 0.765, 0.300]
    assert [current[i].recorded_probability for i in ids] == [0.511, 0.620, 0.760, 0.300]

    # The same night again writes nothing new; a backfill writes a row for everyone and
    # leaves the current scores alone.
    before = [(row.id, row.as_of, row.probability) for row in rows]
    await write(session, shop, ids, nights[2], 3)
    assert [(row.id, row.as_of, row.probability) for row in await history_rows(session, shop)] == (
        before
    )
    await write(session, shop, ids, nights[0], 0)
    backfilled = await history_rows(session, shop)
    assert len(backfilled) == len(rows) + len(ids)
    current = await current_scores(session, shop)
    assert [current[i].recorded_probability for i in ids] == [0.511, 0.620, 0.760, 0.300]
    assert {score.as_of for score in current.values()} == {AS_OF + timedelta(days=3)}
