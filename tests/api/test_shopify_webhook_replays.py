"""Shopify webhooks through the endpoint: replayed out of order concurrently, and tampered."""

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from domain.connection.models import WebhookInbox
from domain.customer.models import Customer
from domain.db import AsyncSession, session_factory
from domain.order.models import Order
from domain.settings import Settings
from integrations.shopify.platform import ShopifyPlatform
from integrations.shopify.webhooks import sign
from tests.api.conftest import RecordingJobQueue
from tests.api.replays import (
    Mall,
    add_connection,
    committed_connection,
    count_rows,
    deliver_in_order,
    endpoint_for,
    inbox,
    post,
    replay_concurrently,
    stored_state,
)
from tests.factories.shop import make_shop
from tests.fakes.shopify import ShopifyStore, VirtualClock, WebhookEmitter
from tests.fakes.shopify.webhooks import Delivery
from tests.plugins.memory_mall.testing import forget_shop

SECRET = "shopify-app-secret"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def _shopify(http: httpx.AsyncClient) -> Mall:
    return Mall(
        name="shopify",
        platforms={"shopify": ShopifyPlatform(http)},
        account="alpha.myshopify.com",
        credentials={
            "shop_domain": "alpha.myshopify.com",
            "access_token": "shpat-1",
            "client_secret": SECRET,
        },
    )


def _shopify_history() -> list[Delivery]:
    """A buyer's orders as Shopify reports them: one partly refunded then cancelled, one edited
    down, and a subscription contract."""
    clock = VirtualClock()
    store = ShopifyStore(clock.now, shop_domain="alpha.myshopify.com")
    emitter = WebhookEmitter(store, SECRET)
    buyer = store.add_customer(email="hanako@example.jp", phone="+819012345678")
    order = store.add_order(buyer, lines=[("TEA", 2, Decimal(1200)), ("CUP", 1, Decimal(980))])
    history = [
        emitter.build("customers/create", emitter.customer(buyer), event_id="evt-customer"),
        emitter.build("orders/create", emitter.order(order), event_id="evt-created"),
    ]
    clock.advance(600)
    store.refund_order(order, Decimal(980))
    history.append(emitter.build("orders/updated", emitter.order(order), event_id="evt-refunded"))
    contract = store.add_contract(buyer)
    history.append(
        emitter.build(
            "subscription_contracts/create", emitter.contract(contract), event_id="evt-contract"
        )
    )
    again = store.add_order(buyer, lines=[("TEA", 3, Decimal(1200))])
    history.append(emitter.build("orders/create", emitter.order(again), event_id="evt-again"))
    clock.advance(600)
    store.edit_order(again, 0, 1)
    history.append(emitter.build("orders/updated", emitter.order(again), event_id="evt-edited"))
    store.cancel_order(order)
    history.append(
        emitter.build("orders/cancelled", emitter.order(order), event_id="evt-cancelled")
    )
    return history


async def test_shopify_replays_out_of_order_end_like_one_ordered_delivery(
    engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient
) -> None:
    sessions = session_factory(engine)
    mall = _shopify(http)
    history = _shopify_history()
    order, again, contract = (
        json.loads(history[n].body)["admin_graphql_api_id"] for n in (1, 4, 3)
    )
    replayed = await committed_connection(sessions, settings, mall)
    ordered = await committed_connection(sessions, settings, mall)
    try:
        result = await replay_concurrently(settings, sessions, mall, replayed, history, seed=11)
        await deliver_in_order(settings, sessions, mall, ordered, history)

        async with sessions() as session:
            state = await stored_state(session, replayed.shop_id)
            expected = await stored_state(session, ordered.shop_id)
            entries = await inbox(session, replayed)
    finally:
        await forget_shop(engine, replayed.shop_id)
        await forget_shop(engine, ordered.shop_id)

    statuses = sorted(answer.json()["status"] for answer in result.answers)
    assert [answer.status_code for answer in result.answers] == [200] * 21
    assert statuses == ["accepted"] * 7 + ["duplicate"] * 14
    assert state == expected
    assert [(o[0], o[3], o[5], o[6], o[7]) for o in state["orders"]] == [
        (order, "cancelled", 3380, 3380, 3),
        (again, "fulfilled", 1200, 0, 1),
    ]
    assert [c[6:8] for c in state["customers"]] == [(1, 1200)]
    assert [(s[0], s[2]) for s in state["subscriptions"]] == [(contract, "active")]
    assert [e[2] for e in state["subscription_events"]] == ["started"]
    assert sorted(str(r.kwargs["inbox_id"]) for r in result.jobs) == sorted(
        str(e.id) for e in entries
    )
    assert sorted(e.event_id for e in entries) == sorted(
        d.headers["X-Shopify-Event-Id"] for d in history
    )
    assert all((e.processed_at is not None, e.error) == (True, None) for e in entries)


async def test_a_tampered_shopify_webhook_is_refused_and_nothing_is_written(
    session: AsyncSession,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> None:
    mall = _shopify(http)
    shop = await make_shop(session)
    connection = await add_connection(session, shop, settings, mall)
    await session.commit()
    signed = _shopify_history()[1]
    tampered = signed.body.replace(b'"3380"', b'"1"')
    assert tampered != signed.body
    forged = {**signed.headers, "X-Shopify-Hmac-Sha256": sign("guessed", signed.body)}
    unsigned = {k: v for k, v in signed.headers.items() if k != "X-Shopify-Hmac-Sha256"}
    jobs = RecordingJobQueue()

    async with endpoint_for(settings, sessions, jobs, mall) as endpoint:
        answers = [
            await post(endpoint, connection, delivery)
            for delivery in (
                Delivery(signed.headers, tampered),
                Delivery(forged, signed.body),
                Delivery(unsigned, signed.body),
            )
        ]

    assert [answer.status_code for answer in answers] == [401, 401, 401]
    stored = [await count_rows(session, m, shop.id) for m in (WebhookInbox, Order, Customer)]
    assert stored == [0, 0, 0]
    assert jobs.sent == []
