from sqlmodel import select

from domain.db import AsyncSession, utcnow
from domain.ids import ConnectionId, ShopId
from domain.order.models import Order, OrderLine
from domain.platforms import OrderLineRecord, OrderRecord, RecordBatch
from domain.sync.records import store_records
from tests.factories.shop import make_shop
from tests.plugins.memory_mall.platform import batch_of
from tests.plugins.memory_mall.testing import add_connection, history


async def test_a_refused_record_is_reported_and_never_half_stored(session: AsyncSession) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    good = batch_of(history(2, 1))
    foreign = OrderRecord(
        platform="shopify",
        external_id="x1",
        customer_external_id="c0",
        ordered_at=utcnow(),
        total_amount=10,
        lines=(OrderLineRecord(quantity=1, amount=10),),
    )
    batch = RecordBatch(customers=good.customers, orders=(*good.orders, foreign))

    stored = await store_records(session, ShopId(shop.id), ConnectionId(connection.id), batch)

    orders = (await session.exec(select(Order.external_id).where(Order.shop_id == shop.id))).all()
    lines = (await session.exec(select(OrderLine).where(OrderLine.shop_id == shop.id))).all()
    assert stored.errors == ("order x1: a shopify record cannot be stored on a memory connection",)
    assert stored.counts.rejected == 1
    assert stored.counts.orders_inserted == 2
    assert stored.counts.customers_inserted == 2
    assert len(stored.touched_customer_ids) == 2
    assert sorted(orders) == ["o0-0", "o1-0"]
    assert lines == []


async def test_a_clean_batch_goes_in_whole_and_again_changes_nothing(
    session: AsyncSession,
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    batch = batch_of(history(3, 2))
    ids = ShopId(shop.id), ConnectionId(connection.id)

    first = await store_records(session, *ids, batch)
    again = await store_records(session, *ids, batch)

    assert (first.counts.orders_inserted, first.errors) == (6, ())
    assert (again.counts.orders_inserted, again.counts.orders_updated) == (0, 0)
    assert again.touched_customer_ids == frozenset()
