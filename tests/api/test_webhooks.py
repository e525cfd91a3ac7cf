import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import func, select
from starlette.applications import Starlette

from api.app import create_app
from domain.connection.accounts import disconnect
from domain.connection.models import Connection, ConnectionStatus, WebhookInbox
from domain.credentials import CredentialCipher
from domain.customer.models import Customer
from domain.db import AsyncSession, session_factory
from domain.ids import ShopId
from domain.jobs import Job, JobRequest
from domain.order.models import Order
from domain.settings import Settings
from kizuki.events import InProcessEventBus
from tests.api.conftest import RecordingJobQueue
from tests.factories.shop import make_shop
from tests.factories.worker import make_worker_context
from tests.plugins.memory_mall import MemoryPlatform
from tests.plugins.memory_mall.platform import SIGNATURE_HEADER, sign
from tests.plugins.memory_mall.testing import BASE, WEBHOOK_SECRET, add_connection, forget_shop
from workers.context import WorkerContext
from workers.webhooks import process_webhook


def delivery(event_id: str, total: int, updated: int, **extra: object) -> bytes:
    at = (BASE + timedelta(minutes=updated)).isoformat()
    data = {
        "id": event_id,
        "topic": "orders/updated",
        "customers": [{"id": "c1", "name": "Hanako", "email": "h@example.jp", "updated_at": at}],
        "orders": [
            {
                "id": "o1",
                "customer": "c1",
                "ordered_at": BASE.isoformat(),
                "total": str(total),
                "updated_at": at,
            }
        ],
        **extra,
    }
    return json.dumps(data).encode()


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(secret, body), "content-type": "application/json"}


@pytest.fixture
def mall() -> MemoryPlatform:
    return MemoryPlatform()


@pytest.fixture
def jobs() -> RecordingJobQueue:
    return RecordingJobQueue()


def app_for(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    mall: MemoryPlatform,
) -> Starlette:
    return create_app(
        settings,
        sessions=sessions,
        job_queue=jobs,
        events=InProcessEventBus(),
        platforms={mall.name: mall},
    )


@pytest.fixture
async def http(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    mall: MemoryPlatform,
) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(settings, sessions, jobs, mall)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kizuki.test") as client:
        yield client


def context(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], mall: MemoryPlatform
) -> WorkerContext:
    return make_worker_context(
        settings, sessions, job_queue=RecordingJobQueue(), platforms={mall.name: mall}
    )


async def run_jobs(ctx: WorkerContext, requests: list[JobRequest]) -> None:
    for request in requests:
        assert request.job is Job.PROCESS_WEBHOOK
        await process_webhook(
            ctx, shop_id=str(request.kwargs["shop_id"]), inbox_id=str(request.kwargs["inbox_id"])
        )


async def inbox(session: AsyncSession, connection: Connection) -> list[WebhookInbox]:
    statement = select(WebhookInbox).where(WebhookInbox.connection_id == connection.id)
    return list((await session.exec(statement)).all())


async def test_a_verified_webhook_is_stored_once_and_processed_once(
    session: AsyncSession,
    http: httpx.AsyncClient,
    jobs: RecordingJobQueue,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: MemoryPlatform,
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await session.commit()
    body = delivery("evt-1", 1200, 1)
    url = f"/webhooks/memory/{connection.id}"

    first = await http.post(url, content=body, headers=signed(body))
    replay = await http.post(url, content=body, headers=signed(body))
    await run_jobs(context(settings, sessions, mall), jobs.sent)
    await run_jobs(context(settings, sessions, mall), jobs.sent)

    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    assert (replay.status_code, replay.json()) == (200, {"status": "duplicate"})
    assert [r.job_id for r in jobs.sent] == [f"process_webhook:{jobs.sent[0].kwargs['inbox_id']}"]
    (entry,) = (
        await session.exec(select(WebhookInbox).where(WebhookInbox.connection_id == connection.id))
    ).all()
    await session.refresh(entry)
    assert entry.processed_at is not None
    assert entry.error is None
    assert entry.payload == {}
    (order,) = (await session.exec(select(Order).where(Order.shop_id == shop.id))).all()
    assert order.total_amount == 1200


async def test_a_bad_signature_is_refused_and_nothing_is_written(
    session: AsyncSession, http: httpx.AsyncClient, jobs: RecordingJobQueue
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await session.commit()
    body = delivery("evt-1", 1200, 1)
    url = f"/webhooks/memory/{connection.id}"

    forged = await http.post(url, content=body, headers=signed(body, "guessed"))
    tampered = await http.post(url, content=body + b" ", headers=signed(body))
    unsigned = await http.post(url, content=body)

    assert [r.status_code for r in (forged, tampered, unsigned)] == [401, 401, 401]
    count = (
        select(func.count())
        .select_from(WebhookInbox)
        .where(WebhookInbox.connection_id == connection.id)
    )
    assert (await session.exec(count)).one() == 0
    assert jobs.sent == []


async def test_unknown_foreign_platform_and_purged_connections_look_the_same(
    session: AsyncSession, http: httpx.AsyncClient, jobs: RecordingJobQueue
) -> None:
    shop = await make_shop(session)
    live = await add_connection(session, shop, account="live")
    gone = await add_connection(session, shop, account="gone")
    # What a shop redaction leaves: nothing to verify a webhook with.
    gone.status = ConnectionStatus.DISCONNECTED
    gone.credentials_encrypted = None
    await session.commit()
    body = delivery("evt-1", 1200, 1)

    answers = [
        await http.post(path, content=body, headers=signed(body))
        for path in (
            f"/webhooks/memory/{uuid.uuid4()}",
            f"/webhooks/shopify/{live.id}",
            f"/webhooks/memory/{gone.id}",
            "/webhooks/memory/not-a-uuid",
        )
    ]

    assert {(a.status_code, a.text) for a in answers} == {(404, '{"status":"not found"}')}
    assert jobs.sent == []


async def test_an_unreadable_webhook_is_refused(
    session: AsyncSession, http: httpx.AsyncClient, jobs: RecordingJobQueue
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await session.commit()
    body = b'{"topic": "orders/updated"}'

    answer = await http.post(
        f"/webhooks/memory/{connection.id}", content=body, headers=signed(body)
    )

    assert answer.status_code == 400
    assert jobs.sent == []


async def test_a_resync_webhook_asks_for_a_sync(
    session: AsyncSession,
    http: httpx.AsyncClient,
    jobs: RecordingJobQueue,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: MemoryPlatform,
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await session.commit()
    body = json.dumps({"id": "evt-9", "topic": "orders/changed", "resync": True}).encode()
    ctx = context(settings, sessions, mall)

    await http.post(f"/webhooks/memory/{connection.id}", content=body, headers=signed(body))
    await run_jobs(ctx, jobs.sent)

    sent = ctx["job_queue"].sent  # type: ignore[attr-defined]
    assert [(r.job, r.job_id) for r in sent] == [
        (Job.SYNC_CONNECTION, f"sync_connection:{connection.id}")
    ]


async def test_concurrent_replays_out_of_order_end_like_one_ordered_delivery(
    engine: AsyncEngine, settings: Settings, mall: MemoryPlatform, jobs: RecordingJobQueue
) -> None:
    # Real commits on the test database: concurrent requests each need their own connection.
    sessions = session_factory(engine)
    async with sessions() as session:
        shop = await make_shop(session)
        connection = await add_connection(session, shop)
        await session.commit()
    try:
        versions = [delivery(f"evt-{n}", 1000 + n, n) for n in (1, 2, 3)]
        deliveries = versions * 3
        random.Random(7).shuffle(deliveries)
        app = app_for(settings, sessions, jobs, mall)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://k.test") as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"/webhooks/memory/{connection.id}", content=body, headers=signed(body)
                    )
                    for body in deliveries
                )
            )
        ctx = context(settings, sessions, mall)
        pending = list(jobs.sent)
        random.Random(3).shuffle(pending)
        await asyncio.gather(*(run_jobs(ctx, [request]) for request in pending))

        async with sessions() as session:
            orders = (await session.exec(select(Order).where(Order.shop_id == shop.id))).all()
            customers = (
                await session.exec(select(Customer).where(Customer.shop_id == shop.id))
            ).all()
            entries = await inbox(session, connection)
        assert sorted(a.status_code for a in answers) == [200] * 9
        assert len(pending) == 3
        assert [(o.external_id, o.total_amount) for o in orders] == [("o1", 1003)]
        assert [(c.order_count, c.total_spent) for c in customers] == [(1, 1003)]
        assert sorted(e.event_id for e in entries) == ["evt-1", "evt-2", "evt-3"]
        assert all(e.processed_at is not None and e.error is None for e in entries)
    finally:
        await forget_shop(engine, shop.id)


async def test_a_redaction_webhook_erases_the_customer(
    session: AsyncSession,
    http: httpx.AsyncClient,
    jobs: RecordingJobQueue,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: MemoryPlatform,
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await session.commit()
    order = delivery("evt-1", 1200, 1)
    redact = json.dumps(
        {
            "id": "evt-2",
            "topic": "customers/redact",
            "privacy": {"action": "redact_customer", "customers": ["c1"], "request_id": "r-9"},
        }
    ).encode()
    url = f"/webhooks/memory/{connection.id}"

    for body in (order, redact):
        assert (await http.post(url, content=body, headers=signed(body))).status_code == 200
    await run_jobs(context(settings, sessions, mall), jobs.sent)

    (customer,) = (
        await session.exec(
            select(Customer)
            .where(Customer.shop_id == shop.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    assert (customer.display_name, customer.email) == ("", None)
    assert (customer.order_count, customer.total_spent) == (1, 1200)


async def test_a_delivery_waiting_when_its_connection_is_disconnected_is_dropped(
    session: AsyncSession,
    http: httpx.AsyncClient,
    jobs: RecordingJobQueue,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: MemoryPlatform,
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await session.commit()
    body = delivery("evt-1", 1200, 1)
    await http.post(f"/webhooks/memory/{connection.id}", content=body, headers=signed(body))
    connection.status = ConnectionStatus.DISCONNECTED
    await session.commit()

    await run_jobs(context(settings, sessions, mall), jobs.sent)

    (entry,) = await inbox(session, connection)
    await session.refresh(entry)
    assert entry.error is not None
    assert "disconnected" in entry.error
    assert entry.payload == {}
    assert (await session.exec(select(Order).where(Order.shop_id == shop.id))).all() == []


async def test_a_disconnected_connection_acts_on_privacy_requests_only(
    session: AsyncSession,
    http: httpx.AsyncClient,
    jobs: RecordingJobQueue,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    mall: MemoryPlatform,
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await session.commit()
    url = f"/webhooks/memory/{connection.id}"
    order = delivery("evt-1", 1200, 1)
    assert (await http.post(url, content=order, headers=signed(order))).status_code == 200
    # Accepted before the disconnect, processed after it.
    redact = json.dumps(
        {
            "id": "evt-2",
            "topic": "customers/redact",
            "privacy": {"action": "redact_customer", "customers": ["c1"]},
        }
    ).encode()
    assert (await http.post(url, content=redact, headers=signed(redact))).status_code == 200
    await run_jobs(context(settings, sessions, mall), jobs.sent[:1])
    await disconnect(
        session,
        ShopId(shop.id),
        connection.id,
        platforms={mall.name: mall},
        cipher=CredentialCipher(settings.secret_key.get_secret_value()),
        actor="test",
    )
    await session.commit()
    later = delivery("evt-3", 9999, 9)

    ignored = await http.post(url, content=later, headers=signed(later))
    await run_jobs(context(settings, sessions, mall), jobs.sent[1:])

    assert ignored.status_code == 200
    assert len(jobs.sent) == 2
    assert sorted(e.event_id for e in await inbox(session, connection)) == ["evt-1", "evt-2"]
    (customer,) = (
        await session.exec(
            select(Customer)
            .where(Customer.shop_id == shop.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    assert (customer.display_name, customer.email) == ("", None)
    assert (customer.order_count, customer.total_spent) == (1, 1200)
