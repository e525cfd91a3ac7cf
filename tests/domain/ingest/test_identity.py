"""Identities linking to one customer at ingest, by normalised email and phone."""

from datetime import timedelta

from sqlalchemy import select, update

from domain.connection.models import Connection
from domain.customer.evidence import evidence_of_customers
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest import Counts
from domain.ingest.statements import fetch_all, table_of
from domain.order.models import Order
from domain.platforms import CustomerRecord, RecordBatch, SubscriptionRecord
from domain.shop.models import Shop
from domain.subscription.models import Subscription
from tests.domain.ingest.records import T0, customer_of, ingest, order, snapshot
from tests.factories.customer import make_connection
from tests.factories.shop import make_shop


def person(
    platform: str,
    external_id: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    name: str = "山田 花子",
    updated: int = 0,
) -> CustomerRecord:
    return CustomerRecord(
        platform,
        external_id,
        display_name=name,
        email=email,
        phone=phone,
        source_updated_at=T0 + timedelta(days=updated),
    )


def batch(*customers: CustomerRecord, platform: str) -> RecordBatch:
    return RecordBatch(
        customers=customers,
        orders=tuple(
            order(f"{c.external_id}-o1", c.external_id, platform=platform) for c in customers
        ),
    )


async def identity(session: AsyncSession, connection: Connection, key: str) -> CustomerIdentity:
    statement = select(table_of(CustomerIdentity)).where(
        table_of(CustomerIdentity).c.connection_id == connection.id,
        table_of(CustomerIdentity).c.external_id == key,
    )
    row = (await fetch_all(session, statement))[0]
    return CustomerIdentity(**row._mapping)


async def count_customers(session: AsyncSession, shop: Shop) -> int:
    rows = await fetch_all(
        session, select(table_of(Customer).c.id).where(table_of(Customer).c.shop_id == shop.id)
    )
    return len(rows)


async def test_an_identity_on_another_mall_with_the_same_email_joins_the_customer(
    session: AsyncSession, shop: Shop
) -> None:
    shopify = await make_connection(session, shop=shop, platform="shopify")
    rakuten = await make_connection(session, shop=shop, platform="rakuten")
    await ingest(
        session,
        shopify,
        batch(person("shopify", "c1", email="Hanako@Example.jp"), platform="shopify"),
    )

    result = await ingest(
        session,
        rakuten,
        batch(person("rakuten", "r1", email=" hanako@example.JP "), platform="rakuten"),
    )

    first = await customer_of(session, shopify, "c1")
    second = await customer_of(session, rakuten, "r1")
    linked = await identity(session, rakuten, "r1")
    origin = await identity(session, shopify, "c1")
    assert second.id == first.id
    assert first.order_count == 2
    assert await count_customers(session, shop) == 1
    assert result.customers == Counts(inserted=1)
    assert result.touched_customer_ids == frozenset({first.id})
    assert linked.merge_evidence == {
        "matched": "email",
        "identity_id": str(origin.id),
        "customer_id": str(first.id),
        "at": linked.merge_evidence["at"],
    }
    assert origin.merge_evidence == {}
    stored = await fetch_all(
        session, select(table_of(Order).c.external_id, table_of(Order).c.identity_id)
    )
    assert sorted((key, str(value)) for key, value in stored if value is not None) == sorted(
        [("c1-o1", str(origin.id)), ("r1-o1", str(linked.id))]
    )


async def test_a_matching_phone_links_and_the_customer_keeps_its_primary_profile(
    session: AsyncSession, shop: Shop
) -> None:
    shopify = await make_connection(session, shop=shop, platform="shopify")
    rakuten = await make_connection(session, shop=shop, platform="rakuten")
    await ingest(
        session, shopify, batch(person("shopify", "c1", phone="090-1234-5678"), platform="shopify")
    )

    await ingest(
        session,
        rakuten,
        batch(
            person("rakuten", "r1", phone="+81 90 1234 5678", name="ヤマダ ハナコ"),
            platform="rakuten",
        ),
    )
    # A later version of the linked identity changes only the identity.
    await ingest(
        session,
        rakuten,
        RecordBatch(
            customers=(
                person(
                    "rakuten",
                    "r1",
                    phone="+81 90 1234 5678",
                    email="new@example.jp",
                    name="ヤマダ",
                    updated=1,
                ),
            )
        ),
    )

    customer = await customer_of(session, rakuten, "r1")
    linked = await identity(session, rakuten, "r1")
    assert customer.id == (await customer_of(session, shopify, "c1")).id
    assert customer.display_name == "山田 花子"
    assert linked.merge_evidence["matched"] == "phone"
    assert linked.email == "new@example.jp"


async def test_masked_relay_addresses_never_link(session: AsyncSession, shop: Shop) -> None:
    rakuten = await make_connection(session, shop=shop, platform="rakuten")
    amazon = await make_connection(session, shop=shop, platform="amazon")
    relay = "abc123s1@pc.fw.rakuten.ne.jp"
    await ingest(session, rakuten, batch(person("rakuten", "r1", email=relay), platform="rakuten"))

    await ingest(
        session,
        rakuten,
        batch(person("rakuten", "r2", email=relay), platform="rakuten"),
    )
    await ingest(
        session,
        amazon,
        batch(
            person("amazon", "a1", email="xyz@marketplace.amazon.co.jp"),
            person("amazon", "a2", email="xyz@marketplace.amazon.co.jp"),
            platform="amazon",
        ),
    )

    assert await count_customers(session, shop) == 4
    assert (await identity(session, rakuten, "r2")).merge_evidence == {}


async def test_identities_never_link_across_shops(session: AsyncSession, shop: Shop) -> None:
    other = await make_shop(session)
    mine = await make_connection(session, shop=shop)
    theirs = await make_connection(session, shop=other)
    await ingest(
        session, mine, batch(person("shopify", "c1", email="a@example.jp"), platform="shopify")
    )

    await ingest(
        session, theirs, batch(person("shopify", "c1", email="a@example.jp"), platform="shopify")
    )

    assert await count_customers(session, shop) == 1
    assert await count_customers(session, other) == 1
    assert (await identity(session, theirs, "c1")).merge_evidence == {}


async def test_new_identities_of_one_batch_sharing_a_hash_make_one_customer(
    session: AsyncSession, shop: Shop
) -> None:
    shopify = await make_connection(session, shop=shop)

    result = await ingest(
        session,
        shopify,
        batch(
            person("shopify", "c1", email="a@example.jp"),
            person("shopify", "c2", email="A@example.jp", phone="090-1111-2222"),
            person("shopify", "c3", phone="09011112222"),
            person("shopify", "c4", email="b@example.jp"),
            platform="shopify",
        ),
    )

    ids = {(await customer_of(session, shopify, key)).id for key in ("c1", "c2", "c3")}
    assert len(ids) == 1
    assert await count_customers(session, shop) == 2
    assert result.customers == Counts(inserted=4)
    first = await identity(session, shopify, "c1")
    third = await identity(session, shopify, "c3")
    assert first.merge_evidence == {}
    assert third.merge_evidence["matched"] == "phone"
    assert third.merge_evidence["identity_id"] == str((await identity(session, shopify, "c2")).id)


async def test_several_matching_customers_pick_the_oldest_and_say_so(
    session: AsyncSession, shop: Shop
) -> None:
    shopify = await make_connection(session, shop=shop)
    rakuten = await make_connection(session, shop=shop, platform="rakuten")
    older = CustomerRecord(
        "shopify", "old", email="a@example.jp", created_at=T0 - timedelta(days=90)
    )
    newer = CustomerRecord("shopify", "new", phone="090-1111-2222", created_at=T0)
    await ingest(session, shopify, RecordBatch(customers=(newer,)))
    await ingest(session, shopify, RecordBatch(customers=(older,)))

    await ingest(
        session,
        rakuten,
        batch(
            person("rakuten", "r1", email="a@example.jp", phone="09011112222"), platform="rakuten"
        ),
    )

    oldest = await customer_of(session, shopify, "old")
    youngest = await customer_of(session, shopify, "new")
    linked = await identity(session, rakuten, "r1")
    assert (await customer_of(session, rakuten, "r1")).id == oldest.id
    assert linked.merge_evidence["matched"] == "email"
    assert linked.merge_evidence["candidates"] == [str(youngest.id)]


async def test_replaying_a_linking_batch_changes_nothing(session: AsyncSession, shop: Shop) -> None:
    shopify = await make_connection(session, shop=shop)
    rakuten = await make_connection(session, shop=shop, platform="rakuten")
    first = batch(person("shopify", "c1", email="a@example.jp", name="山田"), platform="shopify")
    second = RecordBatch(
        customers=(person("rakuten", "r1", email="a@example.jp", name="ヤマダ"),),
        orders=(order("r-o1", "r1", platform="rakuten"),),
        subscriptions=(
            SubscriptionRecord("rakuten", "s1", "r1", started_at=T0, source_updated_at=T0),
        ),
    )
    await ingest(session, shopify, first)
    await ingest(session, rakuten, second)
    before = await snapshot(session, shop)

    replays = [await ingest(session, rakuten, second), await ingest(session, shopify, first)]

    assert await snapshot(session, shop) == before
    assert [r.customers for r in replays] == [Counts(unchanged=1), Counts(unchanged=1)]
    assert all(r.touched_customer_ids == frozenset() for r in replays)
    subscription = (await fetch_all(session, select(table_of(Subscription))))[0]
    assert subscription.identity_id == (await identity(session, rakuten, "r1")).id


async def test_a_stored_identity_that_comes_to_match_gets_a_suggestion_not_a_merge(
    session: AsyncSession, shop: Shop
) -> None:
    shopify = await make_connection(session, shop=shop)
    rakuten = await make_connection(session, shop=shop, platform="rakuten")
    await ingest(
        session, shopify, batch(person("shopify", "c1", email="a@example.jp"), platform="shopify")
    )
    await ingest(
        session, rakuten, batch(person("rakuten", "r1", email="b@example.jp"), platform="rakuten")
    )
    target = await customer_of(session, shopify, "c1")
    own = await customer_of(session, rakuten, "r1")

    await ingest(
        session,
        rakuten,
        RecordBatch(customers=(person("rakuten", "r1", email="a@example.jp", updated=1),)),
    )

    assert (await customer_of(session, rakuten, "r1")).id == own.id
    changed = await identity(session, rakuten, "r1")
    assert changed.merge_evidence["suggested"]["customer_id"] == str(target.id)
    assert changed.merge_evidence["suggested"]["matched"] == "email"
    shown = await evidence_of_customers(session, ShopId(shop.id), [own.id])
    [evidence] = shown[own.id]
    assert evidence.suggestion is not None
    assert evidence.suggestion.customer_id == target.id
    assert evidence.matched is None

    # Contact data that no longer matches withdraws the suggestion.
    await ingest(
        session,
        rakuten,
        RecordBatch(customers=(person("rakuten", "r1", email="c@example.jp", updated=2),)),
    )
    assert "suggested" not in (await identity(session, rakuten, "r1")).merge_evidence


async def test_updates_set_the_buying_identity_too(session: AsyncSession, shop: Shop) -> None:
    shopify = await make_connection(session, shop=shop)
    first = RecordBatch(
        orders=(order("o1", "c1"),),
        subscriptions=(SubscriptionRecord("shopify", "s1", "c1", started_at=T0),),
    )
    await ingest(session, shopify, first)
    for table in (table_of(Order), table_of(Subscription)):
        await session.exec(update(table).where(table.c.shop_id == shop.id).values(identity_id=None))

    await ingest(
        session,
        shopify,
        RecordBatch(
            orders=(order("o1", "c1", total=100, updated=T0 + timedelta(days=1)),),
            subscriptions=(
                SubscriptionRecord(
                    "shopify", "s1", "c1", started_at=T0, source_updated_at=T0 + timedelta(days=1)
                ),
            ),
        ),
    )

    buyer = (await identity(session, shopify, "c1")).id
    for table in (table_of(Order), table_of(Subscription)):
        stored = await fetch_all(session, select(table.c.identity_id))
        assert [row[0] for row in stored] == [buyer]
