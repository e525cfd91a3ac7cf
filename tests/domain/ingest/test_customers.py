import hashlib
from datetime import timedelta

from sqlmodel import select as sm_select

from domain.customer.models import CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest import Counts
from domain.ingest.aggregates import recompute_customer_aggregates
from domain.order.models import OrderStatus
from domain.platforms import (
    CustomerRecord,
    RecordBatch,
)
from domain.shop.models import Shop
from tests.domain.ingest.records import (
    T0,
    customer_aggregates,
    customer_of,
    full_batch,
    ingest,
    mixed_batches,
    order,
)
from tests.factories.customer import make_connection


async def test_identity_and_contact_data(session: AsyncSession, shop: Shop) -> None:
    shopify = await make_connection(session, shop=shop)
    rakuten = await make_connection(session, shop=shop, platform="rakuten")
    amazon = await make_connection(session, shop=shop, platform="amazon")
    await ingest(session, shopify, full_batch())
    await ingest(
        session,
        rakuten,
        RecordBatch(
            customers=(
                CustomerRecord(
                    "rakuten", "r1", email="815DB2@pc.fw.rakuten.ne.jp", phone="03-1234-5678"
                ),
            )
        ),
    )
    await ingest(session, amazon, RecordBatch(orders=(order("503-1", "a1", platform="amazon"),)))

    hanako = await customer_of(session, shopify, "c1")
    assert (hanako.display_name, hanako.email, hanako.phone) == (
        "山田 花子",
        "hanako@example.jp",
        "+819012345678",
    )
    assert not hanako.marketing_restricted
    identities = {
        identity.external_id: identity
        for identity in (
            await session.exec(
                sm_select(CustomerIdentity).where(CustomerIdentity.shop_id == shop.id)
            )
        ).all()
    }
    assert identities["c1"].email_hash == hashlib.sha256(b"hanako@example.jp").hexdigest()
    assert identities["c1"].phone_hash == hashlib.sha256(b"+819012345678").hexdigest()
    assert identities["r1"].email == "815db2@pc.fw.rakuten.ne.jp"
    assert identities["r1"].email_masked
    assert identities["r1"].email_hash is None
    assert identities["r1"].phone_hash == hashlib.sha256(b"+81312345678").hexdigest()
    assert (await customer_of(session, amazon, "a1")).marketing_restricted
    # The same external id on another connection is another person.
    other = await ingest(
        session, rakuten, RecordBatch(customers=(CustomerRecord("rakuten", "c1"),))
    )
    assert other.customers == Counts(inserted=1)
    assert (await customer_of(session, rakuten, "c1")).id != hanako.id


async def test_bare_customers_are_created_for_orders_alone(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    result = await ingest(session, connection, RecordBatch(orders=(order("o1", "c9"),)))
    assert result.customers == Counts(inserted=1)
    customer = await customer_of(session, connection, "c9")
    assert customer.created_at == T0
    assert customer.display_name == ""
    # A later customer record fills in the bare customer.
    record = CustomerRecord("shopify", "c9", display_name="鈴木 陽子", source_updated_at=T0)
    filled = await ingest(session, connection, RecordBatch(customers=(record,)))
    assert filled.customers == Counts(updated=1)
    assert (await customer_of(session, connection, "c9")).display_name == "鈴木 陽子"


async def test_aggregates_count_purchases_only(session: AsyncSession, shop: Shop) -> None:
    connection = await make_connection(session, shop=shop)
    day = timedelta(days=1)
    batch = RecordBatch(
        orders=(
            order("o1", at=T0 - 10 * day, status=OrderStatus.CANCELLED, total=100_000),
            order("o2", at=T0, total=3000),
            order("o3", at=T0 + 5 * day, total=5000, refunded_amount=1200),
            order("o4", at=T0 + 9 * day, status=OrderStatus.REFUNDED, total=7000),
            order("o5", at=T0 + 7 * day, total=1999, currency="USD"),
            order("o6", at=T0 + 8 * day, status=OrderStatus.OPEN, total=2000),
        )
    )
    await ingest(session, connection, batch)
    customer = await customer_of(session, connection, "c1")
    assert customer.order_count == 4
    assert customer.first_order_at == T0
    assert customer.last_order_at == T0 + 8 * day
    assert customer.total_spent == 3000 + (5000 - 1200) + 2000
    assert customer.currency == "JPY"

    # Cancelling the first purchase moves first_order_at; refunds move nothing else.
    cancel = order("o2", at=T0, total=3000, status=OrderStatus.CANCELLED, updated=T0 + 20 * day)
    await ingest(session, connection, RecordBatch(orders=(cancel,)))
    customer = await customer_of(session, connection, "c1")
    assert (customer.order_count, customer.first_order_at, customer.total_spent) == (
        3,
        T0 + 5 * day,
        3800 + 2000,
    )


async def test_an_order_moving_to_another_customer_updates_both(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    await ingest(session, connection, RecordBatch(orders=(order("o1", "guest-1"),)))
    moved = order("o1", "c1", updated=T0 + timedelta(hours=1))
    result = await ingest(session, connection, RecordBatch(orders=(moved,)))
    assert result.orders == Counts(updated=1)
    guest = await customer_of(session, connection, "guest-1")
    owner = await customer_of(session, connection, "c1")
    assert (guest.order_count, guest.total_spent, guest.last_order_at) == (0, 0, None)
    assert (owner.order_count, owner.total_spent) == (1, 3280)


async def test_a_customer_is_never_created_after_their_first_purchase(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    await ingest(session, connection, RecordBatch(customers=(CustomerRecord("shopify", "c1"),)))
    assert (await customer_of(session, connection, "c1")).created_at > T0
    await ingest(session, connection, RecordBatch(orders=(order("o1", at=T0),)))
    assert (await customer_of(session, connection, "c1")).created_at == T0
    again = await ingest(
        session, connection, RecordBatch(customers=(CustomerRecord("shopify", "c1"),))
    )
    assert again.customers == Counts(unchanged=1)


async def test_aggregates_of_customers_without_purchases_in_the_shop_currency(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    day = timedelta(days=1)
    known = CustomerRecord("shopify", "c3", created_at=T0 - 30 * day, source_updated_at=T0)
    batch = RecordBatch(
        customers=(known,),
        orders=(
            order("o1", "c1", at=T0, status=OrderStatus.CANCELLED, total=4000),
            order("o2", "c2", at=T0 + day, total=1999, currency="USD"),
            order("o3", "c3", at=T0 + 2 * day, total=5000),
        ),
    )
    await ingest(session, connection, batch)

    cancelled_only = await customer_of(session, connection, "c1")
    assert (
        cancelled_only.order_count,
        cancelled_only.first_order_at,
        cancelled_only.last_order_at,
        cancelled_only.total_spent,
        cancelled_only.created_at,
    ) == (0, None, None, 0, T0)
    other_currency = await customer_of(session, connection, "c2")
    assert (other_currency.order_count, other_currency.total_spent) == (1, 0)
    assert other_currency.first_order_at == other_currency.last_order_at == T0 + day
    # Created before the first purchase: the creation time stays.
    earlier = await customer_of(session, connection, "c3")
    assert (earlier.created_at, earlier.first_order_at) == (T0 - 30 * day, T0 + 2 * day)


async def test_new_customers_aggregates_are_what_the_database_recomputes(
    session: AsyncSession, shop: Shop
) -> None:
    # New customers get their aggregates in Python before their rows are written; the
    # database's recomputation from the stored orders must agree, whatever the batch holds.
    connection = await make_connection(session, shop=shop)
    for batch in mixed_batches(11):
        await ingest(session, connection, batch)
    stored = await customer_aggregates(session)
    assert len(stored) == 31
    assert sum(row[1] for row in stored.values()) > 0
    first_products = [row[-1] for row in stored.values() if row[2] is not None]
    assert 0 < first_products.count(None) < len(first_products)

    await recompute_customer_aggregates(session, ShopId(shop.id), list(stored), currency="JPY")

    assert await customer_aggregates(session) == stored
