"""Shopify's webhooks after a disconnect or an uninstall: privacy topics still verify and act.

Shopify sends `shop/redact` 48 hours after the app is uninstalled, and `customers/redact` or
`customers/data_request` at any time: a disconnected connection keeps its client secret (and
nothing else) to verify them, and ignores every other topic.
"""

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, select

from api.app import create_app
from api.relay import encode_id
from domain.audit.models import AuditLog
from domain.connection.models import Connection, ConnectionStatus, WebhookInbox
from domain.credentials import CredentialCipher
from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.jobs import Job
from domain.message.models import Task
from domain.order.models import Order
from domain.settings import Settings
from domain.shop.models import Role, Shop
from domain.shop.service import create_api_key
from integrations.shopify.platform import ShopifyPlatform
from kizuki.events import InProcessEventBus
from tests.api.conftest import GraphQLClient, RecordingJobQueue, serving
from tests.factories.customer import make_encrypted_connection
from tests.factories.shop import make_shop
from tests.factories.worker import make_worker_context
from workers.context import WorkerContext
from workers.webhooks import process_webhook

SECRET = "shopify-app-secret"
CREDENTIALS = {
    "shop_domain": "kizuki-test.myshopify.com",
    "access_token": "shpat-1",
    "client_secret": SECRET,
}
PAYLOADS = Path(__file__).parents[1] / "integrations" / "shopify" / "payloads"
UNINSTALLED = b'{"id": 954889, "domain": "kizuki-test.myshopify.com"}'
DISCONNECT = """
mutation($id: ID!) {
  disconnect(id: $id) {
    ... on ConnectionPayload { connection { id status } }
    ... on UserError { code field }
  }
}"""


def signed(topic: str, event_id: str, body: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    if body is None:
        body = (PAYLOADS / f"{topic.replace('/', '_')}.json").read_bytes()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": "kizuki-test.myshopify.com",
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": "2026-11-24T01:00:00.000Z",
    }
    return body, headers


@pytest.fixture
def jobs() -> RecordingJobQueue:
    return RecordingJobQueue()


@pytest.fixture
async def mall_http() -> AsyncIterator[httpx.AsyncClient]:
    # Shopify's own API is never called: webhooks carry what they need.
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def platform(mall_http: httpx.AsyncClient) -> ShopifyPlatform:
    return ShopifyPlatform(mall_http)


@pytest.fixture
async def kizuki(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    platform: ShopifyPlatform,
) -> AsyncIterator[GraphQLClient]:
    app = create_app(
        settings,
        sessions=sessions,
        job_queue=jobs,
        events=InProcessEventBus(),
        platforms={"shopify": platform},
    )
    async with serving(app) as client:
        yield client


class Store:
    """A shop with a Shopify connection, and the Kizuki its webhooks reach."""

    def __init__(
        self,
        session: AsyncSession,
        kizuki: GraphQLClient,
        jobs: RecordingJobQueue,
        worker: WorkerContext,
        shop: Shop,
        connection: Connection,
        admin: str,
    ) -> None:
        self.session, self.kizuki, self.jobs, self.worker = session, kizuki, jobs, worker
        self.shop, self.connection, self.admin = shop, connection, admin

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        path = f"/webhooks/shopify/{self.connection.id}"
        return await self.kizuki.http.post(path, content=body, headers=headers)

    async def deliver(self, topic: str, event_id: str, body: bytes | None = None) -> int:
        """Post a signed webhook and run the jobs it enqueued; its status code."""
        answer = await self.post(*signed(topic, event_id, body))
        pending, self.jobs.sent[:] = list(self.jobs.sent), []
        for request in pending:
            assert request.job is Job.PROCESS_WEBHOOK
            await process_webhook(
                self.worker,
                shop_id=str(request.kwargs["shop_id"]),
                inbox_id=str(request.kwargs["inbox_id"]),
            )
        return answer.status_code

    async def disconnect(self) -> None:
        variables = {"id": encode_id("StoreConnection", self.connection.id)}
        data = await self.kizuki.data(DISCONNECT, key=self.admin, variables=variables)
        assert data["disconnect"]["connection"]["status"] == "DISCONNECTED"

    async def stored(self) -> Connection:
        await self.session.refresh(self.connection)
        return self.connection

    async def count(self, model: type[Order | Customer | WebhookInbox | Task]) -> int:
        statement = select(func.count()).select_from(model).where(model.shop_id == self.shop.id)
        return (await self.session.exec(statement)).one()

    async def orders(self) -> list[tuple[str, int, int, str]]:
        statement = (
            select(Order)
            .where(Order.shop_id == self.shop.id)
            .execution_options(populate_existing=True)
        )
        found = (await self.session.exec(statement)).all()
        return [(o.external_id, o.total_amount, o.refunded_amount, str(o.status)) for o in found]

    async def audit(self) -> list[tuple[str, str]]:
        statement = select(AuditLog.actor, AuditLog.action).where(AuditLog.shop_id == self.shop.id)
        return sorted((await self.session.exec(statement)).all())


@pytest.fixture
async def store(
    session: AsyncSession,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    kizuki: GraphQLClient,
    jobs: RecordingJobQueue,
    platform: ShopifyPlatform,
) -> Store:
    shop = await make_shop(session)
    _, admin = await create_api_key(session, ShopId(shop.id), Role.ADMIN, name="admin")
    connection = await make_encrypted_connection(
        session,
        shop=shop,
        settings=settings,
        platform="shopify",
        account="kizuki-test.myshopify.com",
        credentials=CREDENTIALS,
    )
    await session.commit()
    worker = make_worker_context(
        settings, sessions, job_queue=RecordingJobQueue(), platforms={"shopify": platform}
    )
    return Store(session, kizuki, jobs, worker, shop, connection, admin)


def credentials(connection: Connection, settings: Settings) -> dict[str, str] | None:
    token = connection.credentials_encrypted
    cipher = CredentialCipher(settings.secret_key.get_secret_value())
    return cipher.decrypt(token) if token else None


@pytest.mark.parametrize("disconnected", [False, True])
async def test_a_signed_shop_redact_purges_the_shop_connected_or_not(
    store: Store, settings: Settings, disconnected: bool
) -> None:
    assert await store.deliver("orders/create", "evt-order") == 200
    assert (await store.count(Order), await store.count(Customer)) == (1, 1)
    if disconnected:
        await store.disconnect()

    answer = await store.deliver("shop/redact", "evt-redact")

    connection = await store.stored()
    assert answer == 200
    assert (await store.count(Order), await store.count(Customer)) == (0, 0)
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.credentials_encrypted is None
    assert ("privacy-request", "privacy.redact_shop") in await store.audit()


async def test_disconnect_keeps_only_the_client_secret(store: Store, settings: Settings) -> None:
    await store.disconnect()

    connection = await store.stored()
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert credentials(connection, settings) == {"client_secret": SECRET}


async def test_after_disconnect_bad_signatures_are_refused_and_other_topics_ignored(
    store: Store,
) -> None:
    assert await store.deliver("orders/create", "evt-order") == 200
    await store.disconnect()
    before = (await store.count(WebhookInbox), await store.orders())
    body, headers = signed("shop/redact", "evt-redact")

    tampered = await store.post(body + b" ", headers)
    forged = await store.post(body, {**headers, "X-Shopify-Hmac-Sha256": "Zm9yZ2Vk"})
    ignored = await store.post(*signed("orders/updated", "evt-update"))

    assert [r.status_code for r in (tampered, forged, ignored)] == [401, 401, 200]
    assert store.jobs.sent == []
    assert (await store.count(WebhookInbox), await store.orders()) == before
    assert await store.count(Customer) == 1


async def test_app_uninstalled_disconnects_once_and_privacy_webhooks_keep_working(
    store: Store, settings: Settings
) -> None:
    assert await store.deliver("orders/create", "evt-order") == 200
    store.connection.sync_lease_until = datetime(2099, 1, 1, tzinfo=UTC)
    await store.session.commit()

    first = await store.deliver("app/uninstalled", "evt-uninstall-1", UNINSTALLED)
    connection = await store.stored()
    again = await store.deliver("app/uninstalled", "evt-uninstall-2", UNINSTALLED)

    assert (first, again) == (200, 200)
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.sync_lease_until is None
    assert credentials(connection, settings) == {"client_secret": SECRET}
    assert await store.audit() == [("webhook:app/uninstalled", "connection.disconnect")]
    assert await store.deliver("customers/data_request", "evt-data") == 200
    assert await store.count(Task) == 1
    assert await store.deliver("customers/redact", "evt-forget") == 200
    (customer,) = (
        await store.session.exec(
            select(Customer)
            .where(Customer.shop_id == store.shop.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    assert (customer.email, customer.phone) == (None, None)
    assert await store.count(Order) == 1
