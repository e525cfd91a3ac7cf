"""Webhook deliveries driven through the real endpoint and worker, for replay and tamper tests.

Replays commit for real on the test database: concurrent requests and jobs each need their
own connection, so those tests make their shops themselves and forget them at the end.
What processing asks for next (syncs, webhook jobs to try again after one) is kept in
`FollowUps`, and `run_follow_ups` runs it as the worker would.
"""

import asyncio
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from arq import Retry
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, select

from api.app import create_app
from domain.connection.models import Connection, WebhookInbox
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.jobs import Job, JobRequest
from domain.order.models import Order, OrderLine
from domain.platforms import StorePlatform
from domain.settings import Settings
from domain.shop.models import Shop
from domain.subscription.models import Subscription, SubscriptionEvent
from kizuki.events import InProcessEventBus
from tests.api.conftest import RecordingJobQueue
from tests.factories.customer import make_encrypted_connection
from tests.factories.shop import make_shop
from tests.factories.worker import make_worker_context
from tests.fakes.shopify.webhooks import Delivery
from workers.context import WorkerContext
from workers.sync import sync_connection
from workers.webhooks import process_webhook


@dataclass(frozen=True)
class Mall:
    """One mall as the endpoint and the worker see it, and how to connect a shop to it."""

    name: str
    platforms: Mapping[str, StorePlatform]
    account: str
    credentials: Mapping[str, str]
    base_url: str | None = None


async def add_connection(
    session: AsyncSession, shop: Shop, settings: Settings, mall: Mall
) -> Connection:
    return await make_encrypted_connection(
        session,
        shop=shop,
        settings=settings,
        platform=mall.name,
        account=mall.account,
        credentials=mall.credentials,
        base_url=mall.base_url,
    )


async def committed_connection(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, mall: Mall
) -> Connection:
    async with sessions() as session:
        shop = await make_shop(session)
        connection = await add_connection(session, shop, settings, mall)
        await session.commit()
    return connection


def endpoint_for(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    mall: Mall,
) -> httpx.AsyncClient:
    app = create_app(
        settings,
        sessions=sessions,
        job_queue=jobs,
        events=InProcessEventBus(),
        platforms=mall.platforms,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kizuki.test")


@dataclass
class FollowUps:
    """What processing asked for next: jobs the worker enqueued (syncs, rescoring), and
    webhook jobs that ended in `Retry` (refused records waiting for a sync)."""

    enqueued: RecordingJobQueue = field(default_factory=RecordingJobQueue)
    retried: list[JobRequest] = field(default_factory=list)

    @property
    def syncs(self) -> list[JobRequest]:
        """The syncs asked for, once per job id (arq enqueues a queued id once)."""
        unique = {r.job_id: r for r in self.enqueued.sent if r.job is Job.SYNC_CONNECTION}
        return list(unique.values())


def _worker_context(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: Mall,
    follow_ups: FollowUps,
    job_try: int = 1,
) -> WorkerContext:
    return make_worker_context(
        settings, sessions, job_queue=follow_ups.enqueued, platforms=mall.platforms, job_try=job_try
    )


async def _process(ctx: WorkerContext, request: JobRequest, follow_ups: FollowUps) -> None:
    assert request.job is Job.PROCESS_WEBHOOK
    try:
        await process_webhook(
            ctx, shop_id=str(request.kwargs["shop_id"]), inbox_id=str(request.kwargs["inbox_id"])
        )
    except Retry:
        follow_ups.retried.append(request)


async def post(
    http: httpx.AsyncClient, connection: Connection, delivery: Delivery
) -> httpx.Response:
    url = f"/webhooks/{connection.platform}/{connection.id}"
    return await http.post(url, content=delivery.body, headers=delivery.headers)


async def deliver_in_order(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: Mall,
    connection: Connection,
    deliveries: Sequence[Delivery],
) -> FollowUps:
    """Each delivery once, in order, each processed before the next is sent."""
    jobs = RecordingJobQueue()
    follow_ups = FollowUps()
    ctx = _worker_context(settings, sessions, mall, follow_ups)
    async with endpoint_for(settings, sessions, jobs, mall) as endpoint:
        for delivery in deliveries:
            assert (await post(endpoint, connection, delivery)).status_code == 200
            await _process(ctx, jobs.sent[-1], follow_ups)
    return follow_ups


@dataclass(frozen=True)
class Replayed:
    answers: list[httpx.Response]
    jobs: list[JobRequest]
    follow_ups: FollowUps


async def replay_concurrently(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: Mall,
    connection: Connection,
    deliveries: Sequence[Delivery],
    seed: int,
) -> Replayed:
    """Every delivery three times, shuffled, all at once; then their jobs, shuffled, at once."""
    shuffled = list(deliveries) * 3
    random.Random(seed).shuffle(shuffled)
    jobs = RecordingJobQueue()
    async with endpoint_for(settings, sessions, jobs, mall) as endpoint:
        answers = await asyncio.gather(
            *(post(endpoint, connection, delivery) for delivery in shuffled)
        )
    pending = list(jobs.sent)
    random.Random(seed + 1).shuffle(pending)
    follow_ups = FollowUps()
    ctx = _worker_context(settings, sessions, mall, follow_ups)
    await asyncio.gather(*(_process(ctx, request, follow_ups) for request in pending))
    return Replayed(list(answers), pending, follow_ups)


async def run_follow_ups(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: Mall,
    follow_ups: FollowUps,
) -> list[JobRequest]:
    """The syncs asked for, then the webhook jobs waiting for them (their next try), until
    nothing more is asked for; every sync that ran. Consumes `follow_ups.retried`."""
    ran: list[JobRequest] = []
    done: set[str | None] = set()
    job_try = 1
    while True:
        syncs = [request for request in follow_ups.syncs if request.job_id not in done]
        if not syncs and not follow_ups.retried:
            return ran
        job_try += 1
        assert job_try <= 4, "follow-ups never settle"
        ctx = _worker_context(settings, sessions, mall, follow_ups)
        for request in syncs:
            since = request.kwargs["since"]
            await sync_connection(
                ctx,
                shop_id=str(request.kwargs["shop_id"]),
                connection_id=str(request.kwargs["connection_id"]),
                since=str(since) if since is not None else None,
            )
            done.add(request.job_id)
            ran.append(request)
        retried, follow_ups.retried = follow_ups.retried, []
        ctx = _worker_context(settings, sessions, mall, follow_ups, job_try=job_try)
        for request in retried:
            await _process(ctx, request, follow_ups)


async def sync_once(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: Mall,
    connection: Connection,
) -> None:
    """One sync of the connection, with no webhook before it: what the mall itself holds."""
    ctx = _worker_context(settings, sessions, mall, FollowUps())
    await sync_connection(ctx, shop_id=str(connection.shop_id), connection_id=str(connection.id))


# What a shop holds, without our own ids and clocks: external ids stand for the rows they key.
State = dict[str, list[tuple[object, ...]]]


async def stored_state(session: AsyncSession, shop_id: uuid.UUID) -> State:
    """Customers, identities, orders and lines, subscriptions and events of a shop, sorted."""
    identities = (
        await session.exec(select(CustomerIdentity).where(CustomerIdentity.shop_id == shop_id))
    ).all()
    keys = {identity.customer_id: identity.external_id for identity in identities}
    customers = (await session.exec(select(Customer).where(Customer.shop_id == shop_id))).all()
    orders = (await session.exec(select(Order).where(Order.shop_id == shop_id))).all()
    order_keys = {order.id: order.external_id for order in orders}
    lines = (await session.exec(select(OrderLine).where(OrderLine.shop_id == shop_id))).all()
    subscriptions = (
        await session.exec(select(Subscription).where(Subscription.shop_id == shop_id))
    ).all()
    subscription_keys = {
        subscription.id: subscription.external_id for subscription in subscriptions
    }
    events = (
        await session.exec(select(SubscriptionEvent).where(SubscriptionEvent.shop_id == shop_id))
    ).all()
    return {
        "customers": sorted(
            (
                keys[c.id],
                c.display_name,
                c.email,
                c.phone,
                c.first_order_at,
                c.last_order_at,
                c.order_count,
                c.total_spent,
                c.currency,
            )
            for c in customers
        ),
        "identities": sorted(
            (i.external_id, i.platform, i.email, i.email_hash, i.phone_hash, i.source_updated_at)
            for i in identities
        ),
        "orders": sorted(
            (
                o.external_id,
                keys[o.customer_id],
                o.ordered_at,
                o.status,
                o.currency,
                o.total_amount,
                o.refunded_amount,
                o.item_quantity,
                o.subscription_external_id,
                o.source_updated_at,
                o.source_hash,
            )
            for o in orders
        ),
        "lines": sorted(
            (
                order_keys[li.order_id],
                li.position,
                li.sku,
                li.title,
                li.quantity,
                li.unit_price,
                li.amount,
            )
            for li in lines
        ),
        "subscriptions": sorted(
            (
                s.external_id,
                keys[s.customer_id],
                s.status,
                s.interval_days,
                s.product_title,
                s.started_at,
                s.cancelled_at,
                s.next_delivery_at,
                s.source_updated_at,
            )
            for s in subscriptions
        ),
        "subscription_events": sorted(
            (subscription_keys[e.subscription_id], e.dedup_key, e.kind, e.occurred_at, e.reason)
            for e in events
        ),
    }


async def inbox(session: AsyncSession, connection: Connection) -> list[WebhookInbox]:
    statement = select(WebhookInbox).where(WebhookInbox.connection_id == connection.id)
    return list((await session.exec(statement)).all())


async def count_rows(session: AsyncSession, model: type[Any], shop_id: uuid.UUID) -> int:
    statement = select(func.count()).select_from(model).where(model.shop_id == shop_id)
    count: int = (await session.exec(statement)).one()
    return count
