"""The built-in malls' webhooks end to end: endpoint, inbox, `process_webhook`, fakes."""

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from arq import Retry
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, select

from api.app import create_app
from domain.connection.accounts import account_of
from domain.connection.models import Connection, WebhookInbox
from domain.credentials import CredentialCipher
from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest import ingest_batch
from domain.jobs import Job, JobRequest
from domain.order.models import Order, OrderStatus
from domain.platforms import PlatformAccount, RecordBatch, StorePlatform, SubscriptionRecord
from domain.settings import Settings
from domain.shop.models import Shop
from domain.subscription.models import SubscriptionEvent, SubscriptionEventKind
from integrations.amazon.platform import AmazonPlatform
from integrations.amazon.webhooks import sign as amazon_sign
from integrations.rakuten.platform import RakutenPlatform
from integrations.shopify.platform import ShopifyPlatform
from kizuki.events import InProcessEventBus
from tests.api.conftest import RecordingJobQueue
from tests.factories.customer import make_encrypted_connection
from tests.factories.shop import make_shop
from tests.factories.worker import make_worker_context
from tests.fakes import amazon as fake_amazon
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.rakuten.clock import FakeClock as RakutenClock
from tests.fakes.rakuten.notifications import order_notification
from tests.fakes.rakuten.server import create_app as rakuten_app
from tests.fakes.rakuten.store import RakutenStore
from workers.context import WorkerContext
from workers.webhooks import WEBHOOK_TRIES, process_webhook

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
AUTH_KEY = "nk-402321-secret"
SHOPIFY_SECRET = "shopify-app-secret"
PAYLOADS = Path(__file__).parents[1] / "integrations"


def _context(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    platforms: Mapping[str, StorePlatform],
    job_try: int = 1,
) -> WorkerContext:
    return make_worker_context(
        settings, sessions, job_queue=RecordingJobQueue(), platforms=platforms, job_try=job_try
    )


def _account(connection: Connection, settings: Settings) -> PlatformAccount:
    return account_of(connection, CredentialCipher(settings.secret_key.get_secret_value()))


def _sent(ctx: WorkerContext) -> list[JobRequest]:
    queue = ctx["job_queue"]
    assert isinstance(queue, RecordingJobQueue)
    return queue.sent


async def _process(ctx: WorkerContext, request: JobRequest) -> None:
    assert request.job is Job.PROCESS_WEBHOOK
    await process_webhook(
        ctx, shop_id=str(request.kwargs["shop_id"]), inbox_id=str(request.kwargs["inbox_id"])
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def _endpoint(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    platforms: Mapping[str, StorePlatform],
) -> httpx.AsyncClient:
    app = create_app(
        settings, sessions=sessions, job_queue=jobs, events=InProcessEventBus(), platforms=platforms
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kizuki.test")


async def _inbox_count(session: AsyncSession, connection: Connection) -> int:
    statement = (
        select(func.count())
        .select_from(WebhookInbox)
        .where(WebhookInbox.connection_id == connection.id)
    )
    return (await session.exec(statement)).one()


async def _entry(session: AsyncSession, connection: Connection) -> WebhookInbox:
    statement = select(WebhookInbox).where(WebhookInbox.connection_id == connection.id)
    entry = (await session.exec(statement)).one()
    await session.refresh(entry)
    return entry


async def _order(session: AsyncSession, shop: Shop, external_id: str) -> Order:
    statement = select(Order).where(Order.shop_id == shop.id, Order.external_id == external_id)
    order = (await session.exec(statement)).one()
    await session.refresh(order)
    return order


# -- Rakuten: XML replies, and orders older than the sweep's trailing window -----------------


async def test_rakuten_notifications_get_xml_replies_and_reread_old_orders(
    session: AsyncSession,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> None:
    clock = RakutenClock(NOW)
    store = RakutenStore(clock=clock)
    old = store.add_order(NOW - timedelta(days=200))
    platform = RakutenPlatform(http, clock=clock, sleep=clock.sleep)
    platforms: dict[str, StorePlatform] = {"rakuten": platform}
    jobs = RecordingJobQueue()
    async with serve_on_loopback(rakuten_app(store)) as base_url:
        shop = await make_shop(session)
        credentials = {**store.credentials(), "notification_auth_key": AUTH_KEY}
        connection = await make_encrypted_connection(
            session,
            shop=shop,
            settings=settings,
            platform="rakuten",
            account=credentials["shop_url"],
            credentials=credentials,
            base_url=base_url,
        )
        # Stored by an earlier sync, before the cancellation.
        first = await platform.fetch_orders(
            _account(connection, settings), [old.number, "402321-20990101-0000000001"]
        )
        assert [r.external_id for r in first.rejected] == ["402321-20990101-0000000001"]
        await ingest_batch(session, ShopId(shop.id), ConnectionId(connection.id), first.records)
        await session.commit()
        assert (await _order(session, shop, old.number)).status != OrderStatus.CANCELLED
        store.cancel(old.number)
        url = f"/webhooks/rakuten/{connection.id}"
        good = order_notification(
            shop_url=credentials["shop_url"], auth_key=AUTH_KEY, orders=[(old.number, "7")]
        )
        forged = order_notification(
            shop_url=credentials["shop_url"], auth_key="guessed", orders=[(old.number, "8")]
        )

        async with _endpoint(settings, sessions, jobs, platforms) as endpoint:
            refused = await endpoint.post(url, content=forged)
            assert await _inbox_count(session, connection) == 0
            assert jobs.sent == []
            accepted = await endpoint.post(url, content=good)
            replay = await endpoint.post(url, content=good)

        ctx = _context(settings, sessions, platforms)
        (request,) = jobs.sent
        await _process(ctx, request)

    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("text/xml")
    assert b"<resultCode>E-400-101</resultCode>" in refused.content
    for answer in (accepted, replay):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/xml")
        assert answer.content.endswith(
            b"<responseModel><resultCode>N-000-000</resultCode></responseModel>"
        )
    assert (await _order(session, shop, old.number)).status == OrderStatus.CANCELLED
    assert [(r.job, r.job_id) for r in _sent(ctx) if r.job is Job.SYNC_CONNECTION] == [
        (Job.SYNC_CONNECTION, f"sync_connection:{connection.id}")
    ]
    (entry,) = (
        await session.exec(select(WebhookInbox).where(WebhookInbox.connection_id == connection.id))
    ).all()
    await session.refresh(entry)
    assert (entry.processed_at is not None, entry.error) == (True, None)


# -- Amazon: ORDER_CHANGE names an order, read again with getOrder ---------------------------


def _order_change(order_id: str, notification_id: str) -> bytes:
    path = PAYLOADS / "amazon" / "payloads" / "order_change.json"
    notification = json.loads(path.read_bytes())
    notification["Payload"]["OrderChangeNotification"]["AmazonOrderId"] = order_id
    notification["NotificationMetadata"]["NotificationId"] = notification_id
    return json.dumps(notification).encode()


async def test_an_amazon_order_change_rereads_the_order_it_names(
    session: AsyncSession,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> None:
    clock = fake_amazon.FakeClock()
    store = fake_amazon.AmazonStore(clock)
    bought = clock.now() - timedelta(days=300)
    old = store.add_order(
        items=[fake_amazon.order_item("B00TEA0001", quantity=2)],
        purchased_at=bought,
        updated_at=bought + timedelta(days=2),
    )
    platform = AmazonPlatform(http, clock=clock.now, sleep=clock.sleep)
    platforms: dict[str, StorePlatform] = {"amazon": platform}
    jobs = RecordingJobQueue()
    async with serve_on_loopback(fake_amazon.create_app(store)) as base_url:
        shop = await make_shop(session)
        credentials = {
            "seller_id": store.seller_id,
            "refresh_token": next(iter(store.refresh_tokens)),
            "lwa_client_id": store.client_id,
            "lwa_client_secret": store.client_secret,
            "marketplace_id": "A1VC38T7YXB528",
            "notification_secret": "relay-secret",
        }
        connection = await make_encrypted_connection(
            session,
            shop=shop,
            settings=settings,
            platform="amazon",
            account=store.seller_id,
            credentials=credentials,
            base_url=base_url,
        )
        first = await platform.fetch_orders(_account(connection, settings), [old.order_id])
        await ingest_batch(session, ShopId(shop.id), ConnectionId(connection.id), first.records)
        await session.commit()
        store.change_order(old.order_id, status="Canceled")
        body = _order_change(old.order_id, "n-1")
        headers = {"x-kizuki-signature": amazon_sign("relay-secret", body)}

        async with _endpoint(settings, sessions, jobs, platforms) as endpoint:
            answer = await endpoint.post(
                f"/webhooks/amazon/{connection.id}", content=body, headers=headers
            )
        ctx = _context(settings, sessions, platforms)
        (request,) = jobs.sent
        await _process(ctx, request)

    assert (answer.status_code, answer.json()) == (200, {"status": "accepted"})
    assert (await _order(session, shop, old.order_id)).status == OrderStatus.CANCELLED
    assert [op for op in (r.operation for r in store.log) if op.startswith("getOrder")] == [
        "getOrder",
        "getOrderItems",
        "getOrder",
        "getOrderItems",
    ]
    assert Job.SYNC_CONNECTION in [r.job for r in _sent(ctx)]


# -- Shopify: a skip that arrives before its contract is synced ------------------------------


def _shopify_skip(topic: str = "subscription_billing_cycles/skip") -> tuple[bytes, dict[str, str]]:
    name = topic.replace("/", "_")
    body = (PAYLOADS / "shopify" / "payloads" / f"{name}.json").read_bytes()
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": "alpha.myshopify.com",
        "X-Shopify-Event-Id": f"evt-{name}",
        "X-Shopify-Triggered-At": "2026-11-24T01:00:00.000Z",
    }
    return body, headers


async def _shopify_setup(
    session: AsyncSession, settings: Settings, http: httpx.AsyncClient
) -> tuple[Shop, Connection, dict[str, StorePlatform]]:
    shop = await make_shop(session)
    connection = await make_encrypted_connection(
        session,
        shop=shop,
        settings=settings,
        platform="shopify",
        account="alpha.myshopify.com",
        credentials={
            "shop_domain": "alpha.myshopify.com",
            "access_token": "shpat-1",
            "client_secret": SHOPIFY_SECRET,
        },
    )
    await session.commit()
    return shop, connection, {"shopify": ShopifyPlatform(http)}


async def _events(session: AsyncSession, shop: Shop) -> list[SubscriptionEventKind]:
    statement = select(SubscriptionEvent.kind).where(SubscriptionEvent.shop_id == shop.id)
    return sorted(SubscriptionEventKind(kind) for kind in (await session.exec(statement)).all())


async def test_an_event_before_its_contract_waits_for_a_sync_and_is_retried(
    session: AsyncSession,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> None:
    shop, connection, platforms = await _shopify_setup(session, settings, http)
    jobs = RecordingJobQueue()
    async with _endpoint(settings, sessions, jobs, platforms) as endpoint:
        body, headers = _shopify_skip()
        answer = await endpoint.post(
            f"/webhooks/shopify/{connection.id}", content=body, headers=headers
        )
    (request,) = jobs.sent
    early = _context(settings, sessions, platforms, job_try=1)

    with pytest.raises(Retry):
        await _process(early, request)

    (entry,) = (
        await session.exec(select(WebhookInbox).where(WebhookInbox.connection_id == connection.id))
    ).all()
    await session.refresh(entry)
    assert answer.status_code == 200
    assert entry.processed_at is None
    assert entry.payload != {}
    assert entry.error is not None
    assert "unknown subscriptions" in entry.error
    assert [(r.job, r.job_id) for r in _sent(early)] == [
        (Job.SYNC_CONNECTION, f"sync_connection:{connection.id}")
    ]
    assert await _events(session, shop) == []

    # The sync stores the contract; the next try stores the skip and closes the entry.
    contract = SubscriptionRecord(
        "shopify",
        "gid://shopify/SubscriptionContract/4401",
        "gid://shopify/Customer/7001",
        started_at=datetime(2026, 9, 1, tzinfo=UTC),
    )
    await ingest_batch(
        session,
        ShopId(shop.id),
        ConnectionId(connection.id),
        RecordBatch(subscriptions=(contract,)),
    )
    await session.commit()
    await _process(_context(settings, sessions, platforms, job_try=2), request)

    closed = await _entry(session, connection)
    assert (closed.processed_at is not None, closed.error, closed.payload) == (True, None, {})
    assert await _events(session, shop) == [SubscriptionEventKind.SKIPPED]


async def test_an_event_still_refused_on_the_last_try_is_recorded_and_closed(
    session: AsyncSession,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> None:
    shop, connection, platforms = await _shopify_setup(session, settings, http)
    jobs = RecordingJobQueue()
    async with _endpoint(settings, sessions, jobs, platforms) as endpoint:
        body, headers = _shopify_skip("subscription_billing_cycles/unskip")
        await endpoint.post(f"/webhooks/shopify/{connection.id}", content=body, headers=headers)
    (request,) = jobs.sent
    last = _context(settings, sessions, platforms, job_try=WEBHOOK_TRIES)

    await _process(last, request)

    (entry,) = (
        await session.exec(select(WebhookInbox).where(WebhookInbox.connection_id == connection.id))
    ).all()
    await session.refresh(entry)
    assert entry.processed_at is not None
    assert entry.error is not None
    assert "unknown subscriptions" in entry.error
    assert entry.payload == {}
    assert await _events(session, shop) == []
    assert [r.job for r in _sent(last)] == [Job.SYNC_CONNECTION]


async def test_a_mall_outage_while_rereading_orders_retries_before_writing_anything(
    session: AsyncSession,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> None:
    clock = RakutenClock(NOW)
    store = RakutenStore(clock=clock)
    old = store.add_order(NOW - timedelta(days=200))
    platform = RakutenPlatform(http, clock=clock, sleep=clock.sleep)
    platforms: dict[str, StorePlatform] = {"rakuten": platform}
    jobs = RecordingJobQueue()
    async with serve_on_loopback(rakuten_app(store)) as base_url:
        shop = await make_shop(session)
        credentials = {**store.credentials(), "notification_auth_key": AUTH_KEY}
        connection = await make_encrypted_connection(
            session,
            shop=shop,
            settings=settings,
            platform="rakuten",
            account=credentials["shop_url"],
            credentials=credentials,
            base_url=base_url,
        )
        await session.commit()
        body = order_notification(
            shop_url=credentials["shop_url"], auth_key=AUTH_KEY, orders=[(old.number, "1")]
        )
        async with _endpoint(settings, sessions, jobs, platforms) as endpoint:
            await endpoint.post(f"/webhooks/rakuten/{connection.id}", content=body)
        (request,) = jobs.sent
        store.fail(len(store.requests) + 1, 100, "503")
        early = _context(settings, sessions, platforms, job_try=1)

        with pytest.raises(Retry):
            await _process(early, request)
        waiting = await _entry(session, connection)
        assert (waiting.processed_at, waiting.error, _sent(early)) == (None, None, [])

        # The last try stores what it can and says why the orders were not read again.
        last = _context(settings, sessions, platforms, job_try=WEBHOOK_TRIES)
        await _process(last, request)

    closed = await _entry(session, connection)
    assert closed.processed_at is not None
    assert closed.error is not None
    assert closed.error.startswith("orders not read again: ")
    assert [r.job for r in _sent(last)] == [Job.SYNC_CONNECTION]
    count = select(func.count()).select_from(Order).where(Order.shop_id == shop.id)
    assert (await session.exec(count)).one() == 0
