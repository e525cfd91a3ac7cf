import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from starlette.applications import Starlette
from websockets.asyncio.client import connect

from api.app import create_app
from api.relay import decode_id_of, encode_id
from domain.connection.models import Connection, ConnectionStatus
from domain.credentials import CredentialCipher
from domain.db import AsyncSession, utcnow
from domain.events import Topic
from domain.ids import ShopId
from domain.jobs import Job
from domain.platforms import RecordBatch, SyncPage
from domain.settings import Settings
from domain.shop.models import Role
from domain.sync import runs
from kizuki.events import InProcessEventBus
from tests.api.conftest import GraphQLClient, RecordingJobQueue, live_server, serving
from tests.api.test_subscriptions import TRANSPORT_WS, receive, start
from tests.api.world import ShopWorld
from tests.factories.worker import make_worker_context
from tests.plugins.memory_mall import MemoryPlatform
from tests.plugins.memory_mall.testing import history
from tests.workers.conftest import RecordingJobQueue as WorkerQueue
from workers.sync import run_sync

SHOPIFY = {"shopDomain": "alpha.myshopify.com", "accessToken": "shpat-1", "clientSecret": "s"}
CONNECT_SHOPIFY = """
mutation($input: ConnectShopifyInput!) {
  connectShopify(input: $input) {
    __typename
    ... on ConnectionPayload { connection { id platform status externalAccountId name baseUrl } }
    ... on UserError { code field message }
  }
}"""
CONNECT_PLATFORM = """
mutation($input: ConnectPlatformInput!) {
  connectPlatform(input: $input) {
    ... on ConnectionPayload { connection { id status } }
    ... on UserError { code field }
  }
}"""
UPDATE = """
mutation($input: UpdateConnectionCredentialsInput!) {
  updateConnectionCredentials(input: $input) {
    ... on ConnectionPayload { connection { id status lastError } }
    ... on UserError { code field }
  }
}"""
DISCONNECT = """
mutation($id: ID!) {
  disconnect(id: $id) {
    ... on ConnectionPayload { connection { id status } }
    ... on UserError { code field }
  }
}"""
SYNC = """
mutation($id: ID!, $since: DateTime) {
  syncConnection(id: $id, since: $since) {
    ... on ConnectionPayload { connection { id } }
    ... on UserError { code field }
  }
}"""
CONNECTIONS = """
{ connections {
    id platform status cursor lastSyncAt backfilledAt backfillProgress lastError webhookPath
    counts { orders customers subscriptions }
    syncRuns(first: 3) {
      kind status pages ordersSeen ordersInserted rejected errors backfillProgress
    }
} }"""


@pytest.fixture
def shopify() -> MemoryPlatform:
    return MemoryPlatform(
        name="shopify", token_key="access_token", tokens={"shpat-1": "alpha.myshopify.com"}
    )


@pytest.fixture
def memory() -> MemoryPlatform:
    return MemoryPlatform(records=list(history(2, 1)), tokens={"tok": "mem-1"})


@pytest.fixture
def app(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    events: InProcessEventBus,
    shopify: MemoryPlatform,
    memory: MemoryPlatform,
) -> Starlette:
    return create_app(
        settings,
        sessions=sessions,
        job_queue=jobs,
        events=events,
        platforms={"shopify": shopify, "memory": memory},
    )


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[GraphQLClient]:
    async with serving(app) as graphql:
        yield graphql


async def connect_shopify(client: GraphQLClient, world: ShopWorld, **given: Any) -> dict[str, Any]:
    variables = {"input": {"credentials": {**SHOPIFY, **given}}}
    data = await client.data(CONNECT_SHOPIFY, key=world.admin, variables=variables)
    result: dict[str, Any] = data["connectShopify"]
    return result


async def connect_memory(client: GraphQLClient, world: ShopWorld) -> str:
    variables = {"input": {"platform": "memory", "credentials": [{"key": "token", "value": "tok"}]}}
    data = await client.data(CONNECT_PLATFORM, key=world.admin, variables=variables)
    connection_id: str = data["connectPlatform"]["connection"]["id"]
    return connection_id


async def test_connecting_a_store_checks_and_stores_encrypted_credentials(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession, shopify: MemoryPlatform
) -> None:
    result = await connect_shopify(client, shop_a)

    assert result["__typename"] == "ConnectionPayload"
    connection = result["connection"]
    assert connection["status"] == "ACTIVE"
    assert connection["externalAccountId"] == "alpha.myshopify.com"
    assert connection["baseUrl"] is None
    assert shopify.checks == 1
    stored = (
        await session.exec(
            select(Connection).where(
                Connection.shop_id == shop_a.shop.id,
                Connection.external_account_id == "alpha.myshopify.com",
            )
        )
    ).one()
    assert stored.credentials_encrypted is not None
    assert "shpat-1" not in stored.credentials_encrypted
    assert CredentialCipher("test-secret").decrypt(stored.credentials_encrypted) == {
        "shop_domain": "alpha.myshopify.com",
        "access_token": "shpat-1",
        "client_secret": "s",
    }


@pytest.mark.parametrize(
    ("given", "code", "field"),
    [
        ({"accessToken": "wrong"}, "INVALID_CREDENTIALS", ["input", "credentials"]),
        ({"accessToken": " "}, "INVALID_INPUT", ["input", "credentials", "accessToken"]),
    ],
)
async def test_refused_credentials_are_user_errors(
    client: GraphQLClient,
    shop_a: ShopWorld,
    given: dict[str, str],
    code: str,
    field: list[str],
) -> None:
    result = await connect_shopify(client, shop_a, **given)

    assert (result["__typename"], result["code"], result["field"]) == ("UserError", code, field)


async def test_an_unreachable_or_missing_mall_is_a_user_error(
    client: GraphQLClient, shop_a: ShopWorld, shopify: MemoryPlatform
) -> None:
    shopify.unavailable = True
    down = await connect_shopify(client, shop_a)
    rakuten = await client.data(
        """mutation($input: ConnectRakutenInput!) { connectRakuten(input: $input) {
            ... on UserError { code field } } }""",
        key=shop_a.admin,
        variables={
            "input": {"credentials": {"serviceSecret": "a", "licenseKey": "b", "shopUrl": "c"}}
        },
    )

    assert down["code"] == "PLATFORM_UNAVAILABLE"
    assert rakuten["connectRakuten"] == {
        "code": "PLATFORM_UNAVAILABLE",
        "field": ["input", "platform"],
    }


async def test_the_same_store_twice_is_a_conflict(client: GraphQLClient, shop_a: ShopWorld) -> None:
    await connect_shopify(client, shop_a)

    again = await connect_shopify(client, shop_a)

    assert (again["code"], again["field"]) == ("ALREADY_CONNECTED", ["input", "credentials"])


async def test_new_credentials_reactivate_a_connection(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    connection_id = (await connect_shopify(client, shop_a))["connection"]["id"]
    stored = (
        await session.exec(
            select(Connection).where(
                Connection.shop_id == shop_a.shop.id,
                Connection.external_account_id == "alpha.myshopify.com",
            )
        )
    ).one()
    stored.status = ConnectionStatus.NEEDS_CREDENTIALS
    stored.last_error = "license expired"
    await session.commit()
    wrong_kind = {"id": connection_id, "credentials": [{"key": "x", "value": "y"}]}
    wrong_mall = {
        "id": connection_id,
        "rakuten": {"serviceSecret": "a", "licenseKey": "b", "shopUrl": "c"},
    }
    right = {"id": connection_id, "shopify": SHOPIFY}

    refused = await client.data(UPDATE, key=shop_a.admin, variables={"input": wrong_kind})
    mismatch = await client.data(UPDATE, key=shop_a.admin, variables={"input": wrong_mall})
    updated = await client.data(UPDATE, key=shop_a.admin, variables={"input": right})

    assert refused["updateConnectionCredentials"]["code"] == "INVALID_CREDENTIALS"
    assert mismatch["updateConnectionCredentials"] == {
        "code": "INVALID_INPUT",
        "field": ["input", "rakuten"],
    }
    assert updated["updateConnectionCredentials"]["connection"] == {
        "id": connection_id,
        "status": "ACTIVE",
        "lastError": None,
    }


async def test_connecting_starts_the_backfill_and_syncs_are_enqueued_after_commit(
    client: GraphQLClient, shop_a: ShopWorld, jobs: RecordingJobQueue
) -> None:
    connection_id = (await connect_shopify(client, shop_a))["connection"]["id"]

    synced = await client.data(
        SYNC, key=shop_a.admin, variables={"id": connection_id, "since": "2025-01-01T00:00:00Z"}
    )
    gone = await client.data(DISCONNECT, key=shop_a.admin, variables={"id": connection_id})
    refused = await client.data(SYNC, key=shop_a.admin, variables={"id": connection_id})

    assert synced["syncConnection"]["connection"]["id"] == connection_id
    assert gone["disconnect"]["connection"]["status"] == "DISCONNECTED"
    assert refused["syncConnection"] == {"code": "CONNECTION_INACTIVE", "field": ["id"]}
    backfill, manual = [r for r in jobs.sent if r.job is Job.SYNC_CONNECTION]
    assert backfill.kwargs["since"] is None
    assert manual.kwargs["since"] == "2025-01-01T00:00:00+00:00"


async def test_connections_show_cursor_counts_and_runs_never_credentials(
    client: GraphQLClient,
    shop_a: ShopWorld,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    memory: MemoryPlatform,
) -> None:
    global_id = await connect_memory(client, shop_a)
    ctx = make_worker_context(
        settings, sessions, job_queue=WorkerQueue(), platforms={"memory": memory}
    )
    connected = (await client.data(CONNECTIONS, key=shop_a.admin))["connections"]
    before = next(c for c in connected if c["id"] == global_id)
    assert before["cursor"] == {}
    started = await run_sync(ctx, ShopId(shop_a.shop.id), _uuid(global_id))
    assert started is not None

    response = await client.post(CONNECTIONS, key=shop_a.admin)
    (row,) = [c for c in response.json()["data"]["connections"] if c["id"] == global_id]

    assert row["status"] == "ACTIVE"
    assert row["cursor"] == {"position": "4"}
    assert row["backfilledAt"] == row["lastSyncAt"] is not None
    assert row["backfillProgress"] == 1.0
    assert row["counts"] == {"orders": 2, "customers": 2, "subscriptions": 0}
    assert row["webhookPath"] == f"/webhooks/memory/{_uuid(global_id)}"
    assert row["syncRuns"] == [
        {
            "kind": "backfill",
            "status": "SUCCEEDED",
            "pages": 2,
            "ordersSeen": 2,
            "ordersInserted": 2,
            "rejected": 0,
            "errors": [],
            "backfillProgress": 1.0,
        }
    ]
    assert "tok" not in response.text


async def test_connections_show_backfill_progress_while_it_runs_and_once_complete(
    client: GraphQLClient,
    shop_a: ShopWorld,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    global_id = await connect_memory(client, shop_a)
    cipher = CredentialCipher(settings.secret_key.get_secret_value())
    shown: list[tuple[float | None, list[tuple[str, str, float | None]]]] = []

    async def show() -> None:
        (row,) = [
            c
            for c in (await client.data(CONNECTIONS, key=shop_a.admin))["connections"]
            if c["id"] == global_id
        ]
        runs = [(r["kind"], r["status"], r["backfillProgress"]) for r in row["syncRuns"]]
        shown.append((row["backfillProgress"], runs))

    await show()
    async with sessions() as session:
        started = await runs.start_sync(
            session,
            ShopId(shop_a.shop.id),
            _uuid(global_id),
            since=None,
            now=utcnow(),
            lease_seconds=60,
            cipher=cipher,
        )
        assert started is not None
        page = SyncPage(RecordBatch(), {"position": "1"}, progress=0.25)
        stored = await runs.store_pages(
            session, started, started.lease, [page], now=utcnow(), lease_seconds=60
        )
        await session.commit()
    await show()
    async with sessions() as session:
        await runs.finish_sync(session, started, stored.lease, now=utcnow())
        await session.commit()
    await show()

    assert shown == [
        (None, []),
        (0.25, [("backfill", "RUNNING", 0.25)]),
        (1.0, [("backfill", "SUCCEEDED", 1.0)]),
    ]


def _uuid(global_id: str) -> uuid.UUID:
    return decode_id_of(global_id, "StoreConnection")


async def test_another_shops_connection_answers_like_a_missing_one(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    foreign = encode_id("StoreConnection", shop_a.connection.id)
    missing = encode_id("StoreConnection", shop_b.shop.id)
    answers = []
    for connection_id in (foreign, missing):
        update = {"id": connection_id, "shopify": SHOPIFY}
        answers.append(
            [
                (await client.data(DISCONNECT, key=shop_b.admin, variables={"id": connection_id}))[
                    "disconnect"
                ],
                (await client.data(SYNC, key=shop_b.admin, variables={"id": connection_id}))[
                    "syncConnection"
                ],
                (await client.data(UPDATE, key=shop_b.admin, variables={"input": update}))[
                    "updateConnectionCredentials"
                ],
            ]
        )

    assert (
        answers[0]
        == answers[1]
        == [{"code": "NOT_FOUND", "field": ["id"]}] * 2
        + [{"code": "NOT_FOUND", "field": ["input", "id"]}]
    )


async def test_only_admins_connect(client: GraphQLClient, shop_a: ShopWorld) -> None:
    variables = {"input": {"credentials": SHOPIFY}}

    result = await client.run(CONNECT_SHOPIFY, key=shop_a.keys[Role.ANALYST], variables=variables)

    assert [e["extensions"]["code"] for e in result["errors"]] == ["FORBIDDEN"]


async def test_sync_progress_is_pushed_per_page_and_at_the_end(
    app: Starlette,
    client: GraphQLClient,
    shop_a: ShopWorld,
    shop_b: ShopWorld,
    events: InProcessEventBus,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    memory: MemoryPlatform,
) -> None:
    global_id = await connect_memory(client, shop_a)
    ctx = make_worker_context(
        settings, sessions, job_queue=WorkerQueue(), platforms={"memory": memory}, events=events
    )
    query = """subscription($id: ID!) { syncProgress(connectionId: $id) {
        connectionId status pages ordersSeen inserted updated throttleWaits rejected
        backfillProgress } }"""
    async with (
        live_server(app) as address,
        connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws,
    ):
        await start(ws, {"Authorization": f"Bearer {shop_a.admin}"})
        payload = {"query": query, "variables": {"id": global_id}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        for _ in range(500):
            if events.subscriber_count(shop_a.shop.id, Topic.SYNC_PROGRESS):
                break
            await asyncio.sleep(0.01)
        await run_sync(ctx, ShopId(shop_a.shop.id), _uuid(global_id))
        received = [(await receive(ws))["payload"]["data"]["syncProgress"] for _ in range(3)]

    # The memory mall never estimates its progress: known only when the backfill completes.
    assert [
        (p["status"], p["pages"], p["ordersSeen"], p["inserted"], p["backfillProgress"])
        for p in received
    ] == [
        ("running", 1, 1, 1, None),
        ("running", 2, 2, 2, None),
        ("succeeded", 2, 2, 2, 1.0),
    ]
    assert {p["connectionId"] for p in received} == {global_id}


async def test_sync_progress_of_another_shops_connection_is_not_found(
    app: Starlette, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    query = "subscription($id: ID!) { syncProgress(connectionId: $id) { status } }"
    foreign = encode_id("StoreConnection", shop_a.connection.id)
    async with (
        live_server(app) as address,
        connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws,
    ):
        await start(ws, {"Authorization": f"Bearer {shop_b.admin}"})
        payload = {"query": query, "variables": {"id": foreign}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        answer = await receive(ws)

    assert answer["type"] == "error"
    assert [e["extensions"]["code"] for e in answer["payload"]] == ["NOT_FOUND"]
