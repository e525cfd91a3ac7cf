import uuid
from datetime import UTC, datetime, timedelta

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.order.models import OrderStatus
from domain.order.service import (
    ORDER_SORTS,
    OrderSort,
    count_orders,
    count_orders_by_customer,
    get_orders,
    lines_by_order,
    list_orders,
    orders_by_customer,
)
from domain.pagination import PageRequest
from tests.factories.customer import make_connection, make_customer
from tests.factories.order import make_order
from tests.factories.shop import make_shop

START = datetime(2024, 5, 1, tzinfo=UTC)


async def test_each_customer_gets_the_same_page_in_one_query(session: AsyncSession) -> None:
    shop = await make_shop(session)
    connection = await make_connection(session, shop=shop)
    first = await make_customer(session, shop=shop, connection=connection)
    second = await make_customer(session, shop=shop, connection=connection)
    quiet = await make_customer(session, shop=shop, connection=connection)
    for customer, days in ((first, [1, 2, 3, 4]), (second, [5])):
        for day in days:
            await make_order(
                session,
                customer=customer,
                connection_id=connection.id,
                ordered_at=START + timedelta(days=day),
            )
    shop_id = ShopId(shop.id)
    newest_two = PageRequest(size=2, descending=True)

    pages = await orders_by_customer(session, shop_id, [first.id, second.id, quiet.id], newest_two)

    assert [o.ordered_at.day for o in pages[first.id].items] == [5, 4]
    assert (pages[first.id].has_next, pages[first.id].has_previous) == (True, False)
    assert [o.ordered_at.day for o in pages[second.id].items] == [6]
    assert pages[quiet.id].items == []
    cursor = ORDER_SORTS[OrderSort.ORDERED_AT].position(pages[first.id].items[-1])
    after = PageRequest(size=2, descending=True, cursor=cursor)
    older = await orders_by_customer(session, shop_id, [first.id], after)
    assert [o.ordered_at.day for o in older[first.id].items] == [3, 2]
    assert older[first.id].has_next is False
    counts = await count_orders_by_customer(session, shop_id, [first.id, second.id, quiet.id])
    assert counts == {first.id: 4, second.id: 1, quiet.id: 0}


async def test_orders_carry_their_platform_status_and_lines(session: AsyncSession) -> None:
    shop = await make_shop(session)
    connection = await make_connection(session, shop=shop, platform="rakuten")
    customer = await make_customer(session, shop=shop, connection=connection)
    order = await make_order(
        session,
        customer=customer,
        connection_id=connection.id,
        lines=[("化粧水", 2, 1500), ("乳液", 1, 2800)],
    )
    shop_id = ShopId(shop.id)

    found = (await get_orders(session, shop_id, [order.id]))[order.id]
    lines = await lines_by_order(session, shop_id, [order.id, uuid.uuid4()])

    assert (found.platform, found.status, found.total_amount) == ("rakuten", OrderStatus.OPEN, 5800)
    assert [(line.position, line.title, line.amount) for line in lines[order.id]] == [
        (1, "化粧水", 3000),
        (2, "乳液", 2800),
    ]
    assert list(lines.values())[1] == []


async def test_listing_and_search_stay_in_the_shop(session: AsyncSession) -> None:
    shop = await make_shop(session)
    other = await make_shop(session)
    for owner, title in ((shop, "ローション"), (other, "ローション")):
        connection = await make_connection(session, shop=owner)
        customer = await make_customer(session, shop=owner, connection=connection)
        await make_order(
            session, customer=customer, connection_id=connection.id, lines=[(title, 1, 100)]
        )
    shop_id = ShopId(shop.id)

    page = await list_orders(session, shop_id, PageRequest(size=10), search="ローション")

    assert len(page.items) == 1
    assert await count_orders(session, shop_id) == 1
    assert await count_orders(session, shop_id, search="nothing") == 0
