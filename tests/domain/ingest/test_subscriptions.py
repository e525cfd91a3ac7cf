from datetime import timedelta

from sqlmodel import select

from domain.db import AsyncSession
from domain.ingest import Counts
from domain.platforms import RecordBatch, SubscriptionRecord
from domain.shop.models import Shop
from domain.subscription.models import Subscription
from tests.domain.ingest.records import T0, ingest
from tests.factories.customer import make_connection


def _record(started: int, updated: int) -> SubscriptionRecord:
    # Amazon Subscribe & Save: one record per order, each "starting" at its order.
    return SubscriptionRecord(
        "amazon",
        "sns:B0001",
        "buyer-1",
        started_at=T0 + timedelta(days=started),
        source_updated_at=T0 + timedelta(days=updated),
    )


async def _started(session: AsyncSession, shop: Shop) -> list[object]:
    statement = select(Subscription.started_at).where(Subscription.shop_id == shop.id)
    return list((await session.exec(statement)).all())


async def test_started_at_keeps_the_earliest_start_ever_seen(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop, platform="amazon")
    # One batch with two orders' records: the newest record wins, but not its start.
    await ingest(session, connection, RecordBatch(subscriptions=(_record(30, 30), _record(0, 0))))
    assert await _started(session, shop) == [T0]

    # A newer record that starts later changes the row but keeps the earliest start.
    newer = await ingest(session, connection, RecordBatch(subscriptions=(_record(60, 60),)))
    assert newer.subscriptions == Counts(updated=1)
    assert await _started(session, shop) == [T0]

    # An older version that knew of an even earlier start moves only the start.
    await ingest(session, connection, RecordBatch(subscriptions=(_record(-30, -30),)))
    assert await _started(session, shop) == [T0 - timedelta(days=30)]

    # Nothing moves for a later start with an older version.
    again = await ingest(session, connection, RecordBatch(subscriptions=(_record(10, 10),)))
    assert again.subscriptions == Counts(unchanged=1)
    assert await _started(session, shop) == [T0 - timedelta(days=30)]
