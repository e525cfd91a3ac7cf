from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select

from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.importing import import_directory
from domain.ingest import Counts
from domain.order.models import Order, OrderLine
from domain.shop.models import Shop
from domain.subscription.models import SubscriptionEvent
from tests.domain.importing.files import ALL_FILES, row_counts, write_files


async def customer(session: AsyncSession, external_id: str) -> Customer:
    statement = (
        select(Customer)
        .join(CustomerIdentity)
        .where(CustomerIdentity.external_id == external_id)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).one()


async def test_all_five_files_are_imported(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(tmp_path / "in", dict(ALL_FILES))

    report = await import_directory(sessions, ShopId(shop.id), directory)

    assert report.customers == Counts(inserted=3)
    assert report.orders == Counts(inserted=4)
    assert report.order_lines == 3
    assert report.subscriptions == Counts(inserted=1)
    assert report.subscription_events == Counts(inserted=2)
    assert (report.rows_read, report.rows_rejected, report.problems) == (12, 0, ())
    assert await row_counts(session, shop) == {
        "Connection": 2,
        "Customer": 3,
        "CustomerIdentity": 3,
        "Order": 4,
        "OrderLine": 3,
        "Product": 1,
        "Subscription": 1,
        "SubscriptionEvent": 2,
    }
    hanako = await customer(session, "c1")
    assert (hanako.display_name, hanako.email, hanako.phone) == (
        "山田 花子",
        "hanako@example.jp",
        "+819012345678",
    )
    # A plain date is 00:00 in the shop's zone (Asia/Tokyo).
    assert hanako.created_at == datetime(2024, 1, 4, 15, 0, tzinfo=UTC)
    assert (hanako.order_count, hanako.total_spent) == (2, 6560 + 3280)
    assert hanako.last_order_at == datetime(2024, 3, 31, 15, 0, tzinfo=UTC)
    # Cancelled orders are no purchases; USD cents are kept but not added to a JPY total.
    misaki = await customer(session, "r1")
    assert (misaki.order_count, misaki.total_spent, misaki.first_order_at) == (0, 0, None)
    stub = await customer(session, "c2")
    assert (stub.order_count, stub.total_spent) == (1, 0)
    usd = (await session.exec(select(Order).where(Order.external_id == "1003"))).one()
    assert (usd.currency, usd.total_amount) == ("USD", 2999)
    first = (await session.exec(select(Order).where(Order.external_id == "1001"))).one()
    assert first.ordered_at == datetime(2024, 3, 1, 1, 0, tzinfo=UTC)
    assert first.item_quantity == 2
    line = (await session.exec(select(OrderLine).where(OrderLine.order_id == first.id))).one()
    assert (line.title, line.quantity, line.unit_price, line.amount) == (
        "化粧水 150ml",
        2,
        3280,
        6560,
    )
    skipped = (
        await session.exec(select(SubscriptionEvent).where(SubscriptionEvent.dedup_key == "ev-2"))
    ).one()
    assert skipped.reason == "在庫が余っている"


async def test_importing_twice_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(tmp_path / "in", dict(ALL_FILES))
    await import_directory(sessions, ShopId(shop.id), directory)
    before = await row_counts(session, shop)

    again = await import_directory(sessions, ShopId(shop.id), directory)

    assert again.customers == Counts(unchanged=2)
    assert again.orders == Counts(unchanged=4)
    assert again.subscriptions == Counts(unchanged=1)
    assert again.subscription_events == Counts(unchanged=2)
    assert await row_counts(session, shop) == before


async def test_a_changed_row_updates_only_that_record(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(tmp_path / "in", dict(ALL_FILES))
    await import_directory(sessions, ShopId(shop.id), directory)
    changed = ALL_FILES["orders.csv"].replace(
        "shopify,1002,c1,2024-04-01,3280,,,,sub-1,",
        "shopify,1002,c1,2024-04-01,3280,,refunded,,sub-1,2024-04-10T00:00:00+09:00",
    )
    write_files(directory, {"orders.csv": changed})

    report = await import_directory(sessions, ShopId(shop.id), directory)

    assert report.orders == Counts(updated=1, unchanged=3)
    hanako = await customer(session, "c1")
    assert (hanako.order_count, hanako.total_spent) == (1, 6560)


async def test_orders_alone_with_quantities(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, shop: Shop, tmp_path: Path
) -> None:
    # The shape of public research data: customer, date, quantity, amount; no products.
    orders = (
        "mall,order_id,customer_id,ordered_at,quantity,total_amount,currency\n"
        "shopify,1-19970101,1,19970101,1,1129,USD\n"
        "shopify,2-19970112,2,19970112,2,1529,USD\n"
        "shopify,2-19970118,2,1997-01-18,5,7799,USD\n"
    )
    directory = write_files(tmp_path / "in", {"orders.csv": orders})

    report = await import_directory(
        sessions, ShopId(shop.id), directory, timezone="America/New_York"
    )

    assert report.orders == Counts(inserted=3)
    assert report.customers == Counts(inserted=2)
    stored = (await session.exec(select(Order).where(Order.external_id == "2-19970118"))).one()
    assert (stored.item_quantity, stored.total_amount, stored.currency) == (5, 7799, "USD")
    assert stored.ordered_at == datetime(1997, 1, 18, 5, 0, tzinfo=UTC)
    assert (await row_counts(session, shop))["OrderLine"] == 0


async def test_orders_without_a_lines_file_keep_their_lines(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, shop: Shop, tmp_path: Path
) -> None:
    await import_directory(sessions, ShopId(shop.id), write_files(tmp_path / "a", dict(ALL_FILES)))
    status_update = (
        "mall,order_id,customer_id,ordered_at,total_amount,status,updated_at\n"
        "shopify,1001,c1,2024-03-01T10:00:00+09:00,6560,cancelled,2024-03-09T00:00:00+09:00\n"
    )
    report = await import_directory(
        sessions, ShopId(shop.id), write_files(tmp_path / "b", {"orders.csv": status_update})
    )
    assert report.orders == Counts(updated=1)
    assert (await row_counts(session, shop))["OrderLine"] == 3


async def test_chunks_smaller_than_the_files(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(tmp_path / "in", dict(ALL_FILES))
    report = await import_directory(sessions, ShopId(shop.id), directory, batch_size=1)
    assert report.orders == Counts(inserted=4)
    assert (await row_counts(session, shop))["OrderLine"] == 3
    again = await import_directory(sessions, ShopId(shop.id), directory, batch_size=1)
    assert again.orders == Counts(unchanged=4)


async def test_unknown_files_are_reported_as_ignored(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(
        tmp_path / "in", {"orders.csv": ALL_FILES["orders.csv"], "order.csv": "x\n"}
    )
    report = await import_directory(sessions, ShopId(shop.id), directory)
    assert report.ignored_files == ("order.csv",)
    assert "ignored (not part of the format): order.csv" in report.summary()
