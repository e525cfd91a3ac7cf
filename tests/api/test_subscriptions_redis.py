"""A subscription event crossing processes: published by another OS process through Redis,
pushed over graphql-transport-ws by an API server to its shop's subscriber only."""

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from api.app import create_app
from domain.db import AsyncSession
from domain.events import Topic
from domain.settings import Settings
from kizuki.events import RedisEventBus, channel_name
from tests.api.conftest import RecordingJobQueue, live_server
from tests.api.world import ShopWorld

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
PUBLISHER = """
import asyncio, sys, uuid
from redis.asyncio import Redis
from domain.events import Event, Topic
from kizuki.events import RedisEventBus

async def main() -> None:
    redis = Redis.from_url(sys.argv[1])
    try:
        bus = RedisEventBus(redis)
        for shop, customers in ((sys.argv[3], 99), (sys.argv[2], 2)):
            await bus.publish(Event(uuid.UUID(shop), Topic.RISK_CHANGED, {"customers": customers}))
    finally:
        await redis.aclose()

asyncio.run(main())
"""


@pytest.fixture
async def redis(redis_available: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_available)
    yield client
    await client.aclose()


async def receive(ws: ClientConnection, wait: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


async def test_an_event_from_another_process_reaches_only_its_shops_subscriber(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    redis_available: str,
    shop_a: ShopWorld,
    shop_b: ShopWorld,
) -> None:
    app = create_app(
        settings, sessions=sessions, job_queue=RecordingJobQueue(), events=RedisEventBus(redis)
    )
    channel = channel_name(shop_a.shop.id, Topic.RISK_CHANGED)
    query = "subscription { events(topics: [RISK_CHANGED]) { topic data } }"

    async with (
        live_server(app) as address,
        connect(
            f"ws://{address}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws,
    ):
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {shop_a.admin}"}}
        await ws.send(json.dumps(init))
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        for _ in range(500):
            if dict(await redis.pubsub_numsub(channel)).get(channel.encode(), 0):
                break
            await asyncio.sleep(0.01)
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PUBLISHER,
            redis_available,
            str(shop_a.shop.id),
            str(shop_b.shop.id),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(publisher.communicate(), timeout=30)
        assert publisher.returncode == 0, stderr.decode()

        pushed = await receive(ws)
        with pytest.raises(TimeoutError):
            await receive(ws, wait=0.5)

    assert pushed == {
        "id": "1",
        "type": "next",
        "payload": {"data": {"events": {"topic": "RISK_CHANGED", "data": {"customers": 2}}}},
    }
