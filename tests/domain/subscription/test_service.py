import uuid
from datetime import UTC, datetime, timedelta

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.subscription.models import (
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from domain.subscription.service import (
    events_by_subscription,
    get_subscriptions,
    subscriptions_by_customer,
)
from tests.factories.customer import make_connection, make_customer
from tests.factories.shop import make_shop

START = datetime(2024, 1, 1, tzinfo=UTC)


async def test_subscriptions_and_events_load_in_order_within_the_shop(
    session: AsyncSession,
) -> None:
    shop = await make_shop(session)
    other = await make_shop(session)
    connection = await make_connection(session, shop=shop)
    customer = await make_customer(session, shop=shop, connection=connection)
    subscription = Subscription(
        shop_id=shop.id,
        connection_id=connection.id,
        customer_id=customer.id,
        external_id="S-1",
        status=SubscriptionStatus.PAUSED,
        started_at=START,
    )
    session.add(subscription)
    await session.flush()
    for days, kind in ((40, SubscriptionEventKind.PAUSED), (10, SubscriptionEventKind.SKIPPED)):
        session.add(
            SubscriptionEvent(
                shop_id=shop.id,
                subscription_id=subscription.id,
                dedup_key=f"{kind}-{days}",
                kind=kind,
                occurred_at=START + timedelta(days=days),
            )
        )
    await session.flush()
    shop_id = ShopId(shop.id)

    by_customer = await subscriptions_by_customer(session, shop_id, [customer.id, uuid.uuid4()])
    events = await events_by_subscription(session, shop_id, [subscription.id])

    assert [(s.external_id, s.status) for s in by_customer[customer.id]] == [
        ("S-1", SubscriptionStatus.PAUSED)
    ]
    assert [e.kind for e in events[subscription.id]] == [
        SubscriptionEventKind.SKIPPED,
        SubscriptionEventKind.PAUSED,
    ]
    assert await get_subscriptions(session, ShopId(other.id), [subscription.id]) == {}
    assert await events_by_subscription(session, ShopId(other.id), [subscription.id]) == {
        subscription.id: []
    }
