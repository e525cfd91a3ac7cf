from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.risk.days import local_day
from domain.risk.history import OrderState, SubscriptionSign
from domain.risk.loading import load_history
from domain.subscription.models import Subscription, SubscriptionEvent, SubscriptionEventKind
from tests.domain.risk.shops import AS_OF, add_customer, add_order, edge_case_shop

TOKYO = ZoneInfo("Asia/Tokyo")


async def test_history_holds_every_known_customer_with_net_orders(session: AsyncSession) -> None:
    edge = await edge_case_shop(session, regulars=1)
    late = await add_customer(session, edge.shop, edge.connection, "late")
    late.created_at = AS_OF + timedelta(days=1)
    await add_order(session, late, edge.connection, at=AS_OF + timedelta(days=2))
    await session.flush()

    history = await load_history(session, ShopId(edge.shop.id), TOKYO, before=AS_OF)

    ids = [history.customer_id(i) for i in range(history.size)]
    assert ids == sorted(customer.id for customer in edge.customers.values())
    orders = history.orders
    assert orders.n_customers == history.size
    assert orders.customer.shape[0] == 1 + 2 + 2 + 2 + 2 + 12
    refunded = ids.index(edge.id_of("refunded"))
    rows = np.flatnonzero(orders.customer == refunded)
    assert sorted(orders.amount[rows].tolist()) == [0.0, 2000.0]
    assert sorted(orders.state[rows].tolist()) == [OrderState.PURCHASE, OrderState.REFUNDED]
    cancelled = ids.index(edge.id_of("cancelled"))
    assert set(orders.state[orders.customer == cancelled].tolist()) == {OrderState.CANCELLED}
    one = ids.index(edge.id_of("one"))
    day = orders.day[orders.customer == one]
    np.testing.assert_allclose(day, [local_day(AS_OF - timedelta(days=40), TOKYO)])
    assert history.subscriptions.customer.shape == (0,)


async def test_a_customer_with_no_orders_counts_from_their_creation(
    session: AsyncSession,
) -> None:
    edge = await edge_case_shop(session, regulars=1)
    shop_id = ShopId(edge.shop.id)
    newcomer = await add_customer(session, edge.shop, edge.connection, "newcomer")
    newcomer.created_at = AS_OF + timedelta(days=3)
    await session.flush()

    before = await load_history(session, shop_id, TOKYO, before=AS_OF)
    after = await load_history(session, shop_id, TOKYO, before=AS_OF + timedelta(days=4))

    assert newcomer.id not in {before.customer_id(i) for i in range(before.size)}
    assert newcomer.id in {after.customer_id(i) for i in range(after.size)}


async def test_subscription_events_come_with_their_customer(session: AsyncSession) -> None:
    edge = await edge_case_shop(session, regulars=1)
    customer = edge.customers["regular0"]
    subscription = Subscription(
        shop_id=edge.shop.id,
        connection_id=edge.connection.id,
        customer_id=customer.id,
        external_id="sub-1",
        started_at=AS_OF - timedelta(days=200),
    )
    session.add(subscription)
    await session.flush()
    kinds = [
        (SubscriptionEventKind.STARTED, 200),
        (SubscriptionEventKind.SKIPPED, 30),
        (SubscriptionEventKind.CANCELLED, 5),
        (SubscriptionEventKind.RESUMED, -5),  # after the cut-off: left out
    ]
    for kind, days in kinds:
        session.add(
            SubscriptionEvent(
                shop_id=edge.shop.id,
                subscription_id=subscription.id,
                dedup_key=f"{kind}-{days}",
                kind=kind,
                occurred_at=AS_OF - timedelta(days=days),
            )
        )
    await session.flush()

    history = await load_history(session, ShopId(edge.shop.id), TOKYO, before=AS_OF)

    index = [history.customer_id(i) for i in range(history.size)].index(customer.id)
    events = history.subscriptions
    assert events.customer.tolist() == [index] * 3
    assert events.kind.tolist() == [
        SubscriptionSign.STARTED,
        SubscriptionSign.SKIPPED,
        SubscriptionSign.CANCELLED,
    ]


async def test_chosen_customers_only_and_unknown_ones_skipped(session: AsyncSession) -> None:
    edge = await edge_case_shop(session, regulars=3)
    wanted = [edge.id_of("regular2"), edge.id_of("one"), edge.connection.id]

    history = await load_history(
        session, ShopId(edge.shop.id), TOKYO, before=AS_OF, customer_ids=wanted
    )

    ids = [history.customer_id(i) for i in range(history.size)]
    assert ids == sorted(wanted[:2])
    assert np.bincount(history.orders.customer).tolist() == [
        12 if ids[0] == edge.id_of("regular2") else 1,
        1 if ids[0] == edge.id_of("regular2") else 12,
    ]


async def test_a_shop_without_customers_loads_empty(session: AsyncSession) -> None:
    edge = await edge_case_shop(session, regulars=0)

    history = await load_history(
        session, ShopId(edge.shop.id), TOKYO, before=AS_OF, customer_ids=[]
    )

    assert history.size == 0
    assert history.orders.customer.shape == (0,)
