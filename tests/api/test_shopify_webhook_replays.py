"""Shopify webhooks through the endpoint: replayed out of order concurrently, and tampered.

A replay is compared with one in-order delivery into a fresh shop, and with a shop that only
synced from the fake shop the webhooks were built from, once what the deliveries cause has
run: their processing, the syncs it asks for, and the webhook jobs that wait for those syncs.
Contract webhooks carry no version of the contract (`integrations.shopify.mapping`), so
before that sync the contract is order-dependent: the last contract webhook processed sets
its status (`active` when a replayed `create` comes after the `pause`), and a skip processed
before its contract is refused until its job's second try. Which of these happens varies
from run to run, not only with the shuffle seed: concurrent jobs commit in whatever order the
database lets them. After the sync the three shops hold the same state whatever the order.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
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
    State,
    add_connection,
    committed_connection,
    count_rows,
    deliver_in_order,
    endpoint_for,
    inbox,
    post,
    replay_concurrently,
    run_follow_ups,
    stored_state,
    sync_once,
)
from tests.factories.shop import make_shop
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.shopify import ALL_SCOPES, FakeShopify, ShopifyStore, VirtualClock, WebhookEmitter
from tests.fakes.shopify.store import FakeContract
from tests.fakes.shopify.webhooks import Delivery
from tests.plugins.memory_mall.testing import forget_shop

SECRET = "shopify-app-secret"
TOKEN = "shpat-1"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@dataclass
class History:
    clock: VirtualClock
    store: ShopifyStore
    deliveries: list[Delivery]
    contract: FakeContract
    base_url: str | None = None


def _shopify(http: httpx.AsyncClient, history: History | None = None) -> Mall:
    """Shopify as the endpoint and the worker see it; with `history`, its syncs read the fake
    shop that history was built from."""
    if history is None:
        platform = ShopifyPlatform(http)
    else:
        clock = history.clock
        platform = ShopifyPlatform(http, clock=clock.now, sleep=clock.sleep)
    return Mall(
        name="shopify",
        platforms={"shopify": platform},
        account="alpha.myshopify.com",
        credentials={
            "shop_domain": "alpha.myshopify.com",
            "access_token": TOKEN,
            "client_secret": SECRET,
        },
        base_url=history.base_url if history is not None else None,
    )


def _shopify_history() -> History:
    """A buyer's orders as Shopify reports them: one partly refunded then cancelled, one edited
    down; and a subscription contract created, a billing cycle of it skipped, then paused."""
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
    clock.advance(600)
    store.skip_cycle(contract, 2)
    history.append(
        emitter.build(
            "subscription_billing_cycles/skip",
            emitter.billing_cycle(contract, 2),
            event_id="evt-skipped",
        )
    )
    clock.advance(600)
    store.set_contract_status(contract, "PAUSED")
    history.append(
        emitter.build(
            "subscription_contracts/pause", emitter.contract(contract), event_id="evt-paused"
        )
    )
    clock.advance(600)
    return History(clock, store, history, contract)


def _without_contracts(state: State) -> State:
    return {k: v for k, v in state.items() if not k.startswith("subscription")}


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
async def test_shopify_replays_out_of_order_end_like_one_ordered_delivery(
    engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient, seed: int
) -> None:
    sessions = session_factory(engine)
    history = _shopify_history()
    deliveries = history.deliveries
    order, again = (json.loads(deliveries[n].body)["admin_graphql_api_id"] for n in (1, 4))
    contract = history.contract
    fake = FakeShopify(history.store, tokens={TOKEN: ALL_SCOPES})
    async with serve_on_loopback(fake.app) as base_url:
        history.base_url = base_url
        mall = _shopify(http, history)
        replayed = await committed_connection(sessions, settings, mall)
        ordered = await committed_connection(sessions, settings, mall)
        synced = await committed_connection(sessions, settings, mall)
        try:
            result = await replay_concurrently(
                settings, sessions, mall, replayed, deliveries, seed=seed
            )
            in_order = await deliver_in_order(settings, sessions, mall, ordered, deliveries)
            async with sessions() as session:
                webhooks_only = await stored_state(session, replayed.shop_id)
                ordered_webhooks_only = await stored_state(session, ordered.shop_id)
            skip_waited = bool(result.follow_ups.retried)
            replay_syncs = await run_follow_ups(settings, sessions, mall, result.follow_ups)
            ordered_syncs = await run_follow_ups(settings, sessions, mall, in_order)
            await sync_once(settings, sessions, mall, synced)

            async with sessions() as session:
                state = await stored_state(session, replayed.shop_id)
                expected = await stored_state(session, ordered.shop_id)
                mall_state = await stored_state(session, synced.shop_id)
                entries = await inbox(session, replayed)
        finally:
            for connection in (replayed, ordered, synced):
                await forget_shop(engine, connection.shop_id)

    statuses = sorted(answer.json()["status"] for answer in result.answers)
    assert [answer.status_code for answer in result.answers] == [200] * 27
    assert statuses == ["accepted"] * 9 + ["duplicate"] * 18
    # Webhooks alone: orders and customers already end alike; the contract's row is the last
    # contract webhook processed (no version to order them by), without what only a sync
    # reads, and a skip processed before its contract waits for the sync.
    assert _without_contracts(webhooks_only) == _without_contracts(ordered_webhooks_only)
    [(*_, status, _, title, _, _, _, version)] = webhooks_only["subscriptions"]
    assert (status in {"active", "paused"}, title, version) == (True, "", None)
    assert ordered_webhooks_only["subscriptions"][0][2] == "paused"
    assert len(webhooks_only["subscription_events"]) == (2 if skip_waited else 3)
    assert not in_order.retried
    # Every contract webhook asks for a sync of its connection: one job id, so one sync.
    assert [r.job_id for r in replay_syncs] == [f"sync_connection:{replayed.id}"]
    assert [r.job_id for r in ordered_syncs] == [f"sync_connection:{ordered.id}"]
    assert state == expected
    assert state == mall_state
    assert [(o[0], o[3], o[5], o[6], o[7]) for o in state["orders"]] == [
        (order, "cancelled", 3380, 3380, 3),
        (again, "fulfilled", 1200, 0, 1),
    ]
    assert [c[6:8] for c in state["customers"]] == [(1, 1200)]
    buyer = f"gid://shopify/Customer/{contract.customer_id}"
    assert state["subscriptions"] == [
        (
            contract.gid,
            buyer,
            "paused",
            30,
            contract.title,
            contract.created_at,
            None,
            None,
            contract.updated_at,
        )
    ]
    paused = f"{contract.gid}:paused@{contract.updated_at.isoformat()}"
    skipped_at = contract.cycles[1].start_at
    assert state["subscription_events"] == [
        (contract.gid, paused, "paused", contract.updated_at, None),
        (contract.gid, f"{contract.gid}:skip:2", "skipped", skipped_at, None),
        (contract.gid, f"{contract.gid}:started", "started", contract.created_at, None),
    ]
    assert sorted(str(r.kwargs["inbox_id"]) for r in result.jobs) == sorted(
        str(e.id) for e in entries
    )
    assert sorted(e.event_id for e in entries) == sorted(
        d.headers["X-Shopify-Event-Id"] for d in deliveries
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
    signed = _shopify_history().deliveries[1]
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
