from datetime import timedelta

from domain.db import AsyncSession
from domain.ingest import Counts
from domain.platforms import CustomerRecord, RecordBatch
from domain.shop.models import Shop
from tests.domain.ingest.records import T0, customer_of, ingest, order
from tests.factories.customer import make_connection


async def test_a_customer_met_again_after_an_earlier_purchase_is_unchanged(
    session: AsyncSession, shop: Shop
) -> None:
    # Shopify's customer was created after an order it is now linked to (a guest checkout
    # later claimed): its first purchase moves the creation time back.
    version = CustomerRecord(
        "shopify",
        "c1",
        display_name="山田 花子",
        created_at=T0 + timedelta(days=30),
        source_updated_at=T0 + timedelta(days=30),
    )
    await ingest(
        session,
        connection := await make_connection(session, shop=shop),
        RecordBatch(customers=(version,), orders=(order("o1", at=T0),)),
    )
    assert (await customer_of(session, connection, "c1")).created_at == T0

    # Every later page that carries the same version of the customer changes nothing.
    again = await ingest(
        session, connection, RecordBatch(customers=(version,), orders=(order("o2"),))
    )

    assert again.customers == Counts(unchanged=1)
    assert (await customer_of(session, connection, "c1")).created_at == T0


async def test_a_new_version_of_the_customer_is_still_stored(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    first = CustomerRecord("shopify", "c1", display_name="山田 花子", source_updated_at=T0)
    await ingest(session, connection, RecordBatch(customers=(first,), orders=(order("o1"),)))
    renamed = CustomerRecord(
        "shopify", "c1", display_name="佐藤 花子", source_updated_at=T0 + timedelta(days=1)
    )

    again = await ingest(session, connection, RecordBatch(customers=(renamed,)))

    assert again.customers == Counts(updated=1)
    assert (await customer_of(session, connection, "c1")).display_name == "佐藤 花子"
