import base64
import hashlib
import hmac
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.ids import ConnectionId
from domain.order.models import OrderStatus
from domain.platforms import (
    PlatformAccount,
    PlatformRejected,
    PrivacyAction,
    PrivacyRequest,
    WebhookEvent,
)
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus
from integrations.shopify.platform import ShopifyPlatform
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.shopify import ShopifyStore, VirtualClock, WebhookEmitter
from tests.integrations.shopify.conftest import PAYLOADS, SECRET, Mall, collect

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
ACCOUNT = PlatformAccount(
    connection_id=ConnectionId(uuid.uuid4()),
    external_account_id="kizuki-test.myshopify.com",
    credentials={
        "shop_domain": "kizuki-test.myshopify.com",
        "access_token": "t",
        "client_secret": SECRET,
    },
)


@pytest.fixture
async def platform() -> ShopifyPlatform:
    async with httpx.AsyncClient() as http:
        return ShopifyPlatform(http, clock=lambda: NOW)


def _signed(topic: str, body: bytes, *, event_id: str | None = "evt-1") -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": "kizuki-test.myshopify.com",
        "X-Shopify-Webhook-Id": "wh-1",
        "X-Shopify-Triggered-At": "2026-11-24T01:00:00.000Z",
    }
    if event_id is not None:
        headers["X-Shopify-Event-Id"] = event_id
    return headers


def _payload(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def _parse(platform: ShopifyPlatform, topic: str, name: str | None = None) -> WebhookEvent:
    body = _payload(name or topic.replace("/", "_"))
    headers = _signed(topic, body)
    assert platform.verify_webhook(ACCOUNT, headers, body)
    return platform.parse_webhook(ACCOUNT, headers, body)


def test_the_signature_over_the_raw_body_is_checked(platform: ShopifyPlatform) -> None:
    body = _payload("orders_create")
    headers = _signed("orders/create", body)
    assert platform.verify_webhook(ACCOUNT, headers, body)
    lowered = {key.lower(): value for key, value in headers.items()}
    assert platform.verify_webhook(ACCOUNT, lowered, body)

    tampered = body.replace(b'"5260"', b'"1"')
    assert tampered != body
    assert not platform.verify_webhook(ACCOUNT, headers, tampered)
    # Same JSON, different bytes: re-serialising breaks the signature, as on Shopify.
    assert not platform.verify_webhook(ACCOUNT, headers, body.replace(b"\n", b"\r\n"))
    missing = {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}
    assert not platform.verify_webhook(ACCOUNT, missing, body)
    forged = {**headers, "X-Shopify-Hmac-Sha256": "bm90IGEgc2lnbmF0dXJl"}
    assert not platform.verify_webhook(ACCOUNT, forged, body)
    assert not platform.verify_webhook(ACCOUNT, {**headers, "X-Shopify-Hmac-Sha256": "署名"}, body)
    other_secret = PlatformAccount(
        connection_id=ACCOUNT.connection_id,
        external_account_id=ACCOUNT.external_account_id,
        credentials={**ACCOUNT.credentials, "client_secret": "another"},
    )
    assert not platform.verify_webhook(other_secret, headers, body)
    no_secret = PlatformAccount(ACCOUNT.connection_id, ACCOUNT.external_account_id, {})
    assert not platform.verify_webhook(no_secret, headers, body)


def test_an_order_webhook_becomes_an_order_and_its_customer(platform: ShopifyPlatform) -> None:
    event = _parse(platform, "orders/create")

    assert (event.event_id, event.topic) == ("evt-1", "orders/create")
    assert event.occurred_at == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    [order] = event.records.orders
    assert order.external_id == "gid://shopify/Order/5001"
    assert order.customer_external_id == "gid://shopify/Customer/7001"
    assert order.ordered_at == datetime(2026, 11, 20, 1, 15, tzinfo=UTC)
    assert order.source_updated_at == datetime(2026, 11, 20, 1, 16, 30, tzinfo=UTC)
    assert (order.total_amount, order.refunded_amount, order.currency) == (5260, 0, "JPY")
    assert order.status is OrderStatus.OPEN
    assert [(line.sku, line.quantity, line.amount) for line in order.lines] == [
        ("BEAN-200", 1, 1980),
        ("MUG", 1, 3280),
    ]
    assert [line.product_external_id for line in order.lines] == [
        "gid://shopify/Product/3001",
        "gid://shopify/Product/3002",
    ]
    [customer] = event.records.customers
    assert (customer.external_id, customer.display_name, customer.email) == (
        "gid://shopify/Customer/7001",
        "山田 花子",
        "hanako@example.jp",
    )
    assert not event.resync


@pytest.mark.parametrize(
    ("topic", "name", "status", "refunded", "quantities"),
    [
        ("orders/updated", "orders_updated", OrderStatus.FULFILLED, 1000, [1, 1]),
        ("orders/cancelled", "orders_cancelled", OrderStatus.CANCELLED, 5260, [1, 1]),
        ("orders/updated", "orders_updated_after_edit", OrderStatus.OPEN, 0, [1, 1]),
        ("orders/paid", "orders_paid", OrderStatus.OPEN, 0, [1, 1]),
        ("orders/fulfilled", "orders_updated", OrderStatus.FULFILLED, 1000, [1, 1]),
    ],
)
def test_order_topics_map_status_refunds_and_current_quantities(
    platform: ShopifyPlatform,
    topic: str,
    name: str,
    status: OrderStatus,
    refunded: int,
    quantities: list[int],
) -> None:
    [order] = _parse(platform, topic, name).records.orders
    assert order.status is status
    assert order.refunded_amount == refunded
    assert [line.quantity for line in order.lines] == quantities


def test_a_guest_order_webhook_belongs_to_the_guest_customer_a_sync_would_use(
    platform: ShopifyPlatform,
) -> None:
    event = _parse(platform, "orders/paid")
    [order] = event.records.orders
    [customer] = event.records.customers
    expected = "guest:" + hashlib.sha256(b"guest@example.jp").hexdigest()
    assert order.customer_external_id == customer.external_id == expected
    assert customer.email == "Guest@Example.JP"


@pytest.mark.parametrize(("topic", "name"), [("orders/edited", None), ("refunds/create", None)])
def test_topics_that_carry_only_a_delta_ask_for_a_resync(
    platform: ShopifyPlatform, topic: str, name: str | None
) -> None:
    event = _parse(platform, topic, name)
    assert event.resync
    assert len(event.records) == 0


def test_a_customer_webhook_becomes_a_customer(platform: ShopifyPlatform) -> None:
    for topic in ("customers/create", "customers/update"):
        [customer] = _parse(platform, topic, "customers_create").records.customers
        assert customer.external_id == "gid://shopify/Customer/7002"
        assert customer.display_name == "佐藤 太郎"
        assert customer.phone == "09087654321"
        assert customer.source_updated_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("topic", "status", "event_key", "kind"),
    [
        (
            "subscription_contracts/create",
            SubscriptionStatus.ACTIVE,
            "started",
            SubscriptionEventKind.STARTED,
        ),
        (
            "subscription_contracts/pause",
            SubscriptionStatus.PAUSED,
            "paused@2026-11-24T01:00:00+00:00",
            SubscriptionEventKind.PAUSED,
        ),
        (
            "subscription_contracts/cancel",
            SubscriptionStatus.CANCELLED,
            "cancelled",
            SubscriptionEventKind.CANCELLED,
        ),
        (
            "subscription_contracts/expire",
            SubscriptionStatus.CANCELLED,
            "cancelled",
            SubscriptionEventKind.CANCELLED,
        ),
        (
            "subscription_contracts/fail",
            SubscriptionStatus.CANCELLED,
            "cancelled",
            SubscriptionEventKind.CANCELLED,
        ),
        (
            "subscription_contracts/activate",
            SubscriptionStatus.ACTIVE,
            "resumed:evt-1",
            SubscriptionEventKind.RESUMED,
        ),
    ],
)
def test_contract_topics_become_a_subscription_and_its_event(
    platform: ShopifyPlatform,
    topic: str,
    status: SubscriptionStatus,
    event_key: str,
    kind: SubscriptionEventKind,
) -> None:
    event = _parse(platform, topic)

    contract = "gid://shopify/SubscriptionContract/4401"
    [subscription] = event.records.subscriptions
    assert subscription.external_id == contract
    assert subscription.customer_external_id == "gid://shopify/Customer/7001"
    assert subscription.status is status
    assert subscription.interval_days == 14
    # No version: it may create the row but never overwrites what a sync stored.
    assert subscription.source_updated_at is None
    [happened] = event.records.subscription_events
    assert (happened.dedup_key, happened.kind) == (f"{contract}:{event_key}", kind)
    assert event.resync


def test_billing_cycle_skips_and_unskips_become_events(platform: ShopifyPlatform) -> None:
    skipped = _parse(platform, "subscription_billing_cycles/skip")
    [skip] = skipped.records.subscription_events
    assert skip.dedup_key == "gid://shopify/SubscriptionContract/4401:skip:3"
    assert skip.kind is SubscriptionEventKind.SKIPPED
    assert skip.occurred_at == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)

    unskipped = _parse(platform, "subscription_billing_cycles/unskip")
    [unskip] = unskipped.records.subscription_events
    assert unskip.kind is SubscriptionEventKind.UNSKIPPED
    assert unskip.subscription_external_id == "gid://shopify/SubscriptionContract/4401"
    assert unskip.dedup_key.startswith("gid://shopify/SubscriptionContract/4401:unskip:3:")
    assert unskip.dedup_key != skip.dedup_key
    assert unskip.occurred_at == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def test_privacy_topics_become_privacy_requests(platform: ShopifyPlatform) -> None:
    data_request = _parse(platform, "customers/data_request").privacy
    assert data_request == PrivacyRequest(
        action=PrivacyAction.DATA_REQUEST,
        customer_external_ids=("gid://shopify/Customer/7001",),
        order_external_ids=("gid://shopify/Order/5001", "gid://shopify/Order/5003"),
        email="hanako@example.jp",
        phone="+819012345678",
        request_id="9999",
    )
    redact = _parse(platform, "customers/redact").privacy
    assert redact is not None
    assert redact.action is PrivacyAction.REDACT_CUSTOMER
    assert redact.customer_external_ids == ("gid://shopify/Customer/7001",)
    assert redact.order_external_ids == ("gid://shopify/Order/5001",)
    shop = _parse(platform, "shop/redact")
    assert shop.privacy == PrivacyRequest(action=PrivacyAction.REDACT_SHOP)
    assert len(shop.records) == 0


def test_app_uninstalled_asks_to_disconnect_and_the_client_secret_alone_verifies(
    platform: ShopifyPlatform,
) -> None:
    kept = {k: v for k, v in ACCOUNT.credentials.items() if k in platform.webhook_credential_keys}
    account = replace(ACCOUNT, credentials=kept)
    body = b'{"id": 954889, "domain": "kizuki-test.myshopify.com"}'
    headers = _signed("app/uninstalled", body)

    assert kept == {"client_secret": SECRET}
    assert platform.verify_webhook(account, headers, body)
    assert not platform.verify_webhook(account, headers, body + b" ")
    event = platform.parse_webhook(account, headers, body)
    assert (event.topic, event.uninstalled, event.privacy, len(event.records)) == (
        "app/uninstalled",
        True,
        None,
        0,
    )
    redact = _payload("shop_redact")
    shop = platform.parse_webhook(account, _signed("shop/redact", redact), redact)
    assert shop.privacy == PrivacyRequest(action=PrivacyAction.REDACT_SHOP)
    assert not shop.uninstalled


def test_the_event_id_falls_back_to_the_webhook_id(platform: ShopifyPlatform) -> None:
    body = _payload("customers_create")
    event = platform.parse_webhook(ACCOUNT, _signed("customers/create", body, event_id=None), body)
    assert event.event_id == "wh-1"


@pytest.mark.parametrize(
    ("topic", "body", "problem"),
    [
        ("orders/create", b"not json", "unreadable webhook"),
        ("orders/create", b"[1, 2]", "not a JSON object"),
        (
            "orders/create",
            b'{"id": 1, "created_at": "2026-11-20T10:15:00+09:00"}',
            "updated_at: Field required",
        ),
        ("customers/update", b'{"id": "seven"}', "id: Input should be a valid integer"),
        (
            "orders/create",
            b'{"id": 1, "created_at": "2026-11-20T10:15:00+09:00", "updated_at": '
            b'"2026-11-20T10:15:00+09:00", "currency": "JPY", "total_price": "10"}',
            "guest order",
        ),
        ("carts/create", b"{}", "unsupported webhook topic"),
    ],
)
def test_unusable_webhooks_are_rejected(
    platform: ShopifyPlatform, topic: str, body: bytes, problem: str
) -> None:
    with pytest.raises(PlatformRejected, match=problem):
        platform.parse_webhook(ACCOUNT, _signed(topic, body), body)


def test_a_webhook_without_topic_or_ids_is_rejected(platform: ShopifyPlatform) -> None:
    body = _payload("shop_redact")
    headers = _signed("shop/redact", body, event_id=None)
    del headers["X-Shopify-Webhook-Id"]
    with pytest.raises(PlatformRejected):
        platform.parse_webhook(ACCOUNT, headers, body)


async def test_a_webhook_and_a_sync_of_one_order_give_the_same_record(mall: Mall) -> None:
    buyer = mall.store.add_customer(email="same@example.jp")
    order = mall.store.add_order(buyer)
    mall.store.refund_order(order, order.total / 2)
    platform = mall.platform()
    [synced] = (await collect(platform, mall.account())).orders
    emitter = WebhookEmitter(mall.store, SECRET)
    delivery = emitter.build("orders/updated", emitter.order(order), event_id="evt-9")

    assert platform.verify_webhook(mall.account(), delivery.headers, delivery.body)
    event = platform.parse_webhook(mall.account(), delivery.headers, delivery.body)

    assert event.records.orders == (synced,)
    assert event.event_id == "evt-9"


def test_the_emitter_signs_as_shopify_does() -> None:
    emitter = WebhookEmitter(ShopifyStore(VirtualClock().now), SECRET)
    delivery = emitter.build("shop/redact", emitter.shop_redact())
    expected = base64.b64encode(hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).digest())
    assert delivery.headers["X-Shopify-Hmac-Sha256"] == expected.decode()


def test_a_contract_update_refreshes_the_subscription_without_an_event(
    platform: ShopifyPlatform,
) -> None:
    event = _parse(platform, "subscription_contracts/update")
    [subscription] = event.records.subscriptions
    assert subscription.interval_days == 30
    assert event.records.subscription_events == ()
    assert event.resync


async def test_a_webhook_sent_over_http_verifies_from_the_raw_body(mall: Mall) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=200)

    buyer = mall.store.add_customer(email="wire@example.jp")
    order = mall.store.add_order(buyer)
    emitter = WebhookEmitter(mall.store, SECRET)
    delivery = emitter.build("orders/create", emitter.order(order))
    receiver = Starlette(routes=[Route("/webhooks/shopify", receive, methods=["POST"])])
    async with serve_on_loopback(receiver) as url:
        response = await emitter.send(mall.http, f"{url}/webhooks/shopify", delivery)
        # Shopify redelivers with the same event id: the inbox dedupes on it.
        await emitter.send(mall.http, f"{url}/webhooks/shopify", delivery)

    assert response.status_code == 200
    platform = mall.platform()
    events = []
    for headers, body in received:
        assert platform.verify_webhook(mall.account(), headers, body)
        events.append(platform.parse_webhook(mall.account(), headers, body))
    assert events[0] == events[1]
    assert [o.external_id for o in events[0].records.orders] == [order.gid]
