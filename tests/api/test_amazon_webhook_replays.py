"""Amazon ORDER_CHANGE notifications through the endpoint, as a relay signs them: replayed
out of order concurrently, and tampered. Each names an order the worker reads again."""

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from domain.connection.models import WebhookInbox
from domain.customer.models import Customer
from domain.db import AsyncSession, session_factory
from domain.order.models import Order
from domain.settings import Settings
from integrations.amazon.platform import AmazonPlatform
from integrations.amazon.webhooks import sign
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
from tests.fakes import amazon as fake_amazon
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.shopify.webhooks import Delivery
from tests.plugins.memory_mall.testing import forget_shop

RELAY_SECRET = "relay-secret"
PAYLOADS = Path(__file__).parents[1] / "integrations" / "amazon" / "payloads"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def _order_change(order_id: str, notification_id: str, at: datetime) -> Delivery:
    path = PAYLOADS / "order_change.json"
    notification = json.loads(path.read_bytes())
    notification["Payload"]["OrderChangeNotification"]["AmazonOrderId"] = order_id
    notification["Payload"]["OrderChangeNotification"]["OrderChangeTrigger"][
        "TimeOfOrderChange"
    ] = at.isoformat()
    notification["NotificationMetadata"]["NotificationId"] = notification_id
    body = json.dumps(notification).encode()
    return Delivery({"x-kizuki-signature": sign(RELAY_SECRET, body)}, body)


def _amazon(http: httpx.AsyncClient, store: fake_amazon.AmazonStore, base_url: str) -> Mall:
    clock = store.clock
    return Mall(
        name="amazon",
        platforms={"amazon": AmazonPlatform(http, clock=clock.now, sleep=clock.sleep)},
        account=store.seller_id,
        credentials={
            "seller_id": store.seller_id,
            "refresh_token": next(iter(store.refresh_tokens)),
            "lwa_client_id": store.client_id,
            "lwa_client_secret": store.client_secret,
            "marketplace_id": "A1VC38T7YXB528",
            "notification_secret": RELAY_SECRET,
        },
        base_url=base_url,
    )


async def test_amazon_replays_out_of_order_end_like_one_ordered_delivery(
    engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient
) -> None:
    clock = fake_amazon.FakeClock()
    store = fake_amazon.AmazonStore(clock)
    bought = clock.now() - timedelta(days=120)
    tea = store.add_order(
        items=[fake_amazon.order_item("B00TEA0001", quantity=2)],
        buyer_email="hanako@marketplace.amazon.co.jp",
        purchased_at=bought,
        updated_at=bought + timedelta(days=1),
    )
    cups = store.add_order(
        items=[fake_amazon.order_item("B00CUP0001")],
        status="Unshipped",
        buyer_email="hanako@marketplace.amazon.co.jp",
        purchased_at=bought + timedelta(days=2),
    )
    history = [
        _order_change(tea.order_id, "n-1", bought + timedelta(days=1)),
        _order_change(cups.order_id, "n-2", bought + timedelta(days=2)),
    ]
    clock.advance(60)
    store.change_order(cups.order_id, status="Shipped")
    history.append(_order_change(cups.order_id, "n-3", clock.now()))
    store.change_order(tea.order_id, status="Canceled")
    history.append(_order_change(tea.order_id, "n-4", clock.now()))
    sessions = session_factory(engine)
    async with serve_on_loopback(fake_amazon.create_app(store)) as base_url:
        mall = _amazon(http, store, base_url)
        replayed = await committed_connection(sessions, settings, mall)
        ordered = await committed_connection(sessions, settings, mall)
        try:
            result = await replay_concurrently(settings, sessions, mall, replayed, history, seed=5)
            await deliver_in_order(settings, sessions, mall, ordered, history)

            async with sessions() as session:
                state = await stored_state(session, replayed.shop_id)
                expected = await stored_state(session, ordered.shop_id)
                entries = await inbox(session, replayed)
        finally:
            await forget_shop(engine, replayed.shop_id)
            await forget_shop(engine, ordered.shop_id)

    statuses = sorted(answer.json()["status"] for answer in result.answers)
    assert [answer.status_code for answer in result.answers] == [200] * 12
    assert statuses == ["accepted"] * 4 + ["duplicate"] * 8
    assert state == expected
    assert [(o[0], o[3]) for o in state["orders"]] == sorted(
        [(tea.order_id, "cancelled"), (cups.order_id, "fulfilled")]
    )
    assert sorted(str(r.kwargs["inbox_id"]) for r in result.jobs) == sorted(
        str(e.id) for e in entries
    )
    assert sorted(e.event_id for e in entries) == ["n-1", "n-2", "n-3", "n-4"]
    assert all((e.processed_at is not None, e.error) == (True, None) for e in entries)


async def test_a_tampered_amazon_notification_is_refused_and_nothing_is_written(
    session: AsyncSession,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> None:
    store = fake_amazon.AmazonStore(fake_amazon.FakeClock())
    mall = _amazon(http, store, "http://127.0.0.1:9")
    shop = await make_shop(session)
    connection = await add_connection(session, shop, settings, mall)
    await session.commit()
    signed = _order_change("503-1234567-7654321", "n-1", store.clock.now())
    tampered = signed.body.replace(b"503-1234567-7654321", b"503-1234567-0000000")
    jobs = RecordingJobQueue()

    async with endpoint_for(settings, sessions, jobs, mall) as endpoint:
        answer = await post(endpoint, connection, Delivery(signed.headers, tampered))

    assert tampered != signed.body
    assert answer.status_code == 401
    stored = [await count_rows(session, m, shop.id) for m in (WebhookInbox, Order, Customer)]
    assert stored == [0, 0, 0]
    assert jobs.sent == []
