"""Band changes from a real recompute, published by the worker's job in another OS process
through Redis, pushed as `riskScoreChanged` to the subscribers of their shop only."""

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
from api.relay import encode_id
from domain.db import AsyncSession
from domain.events import Topic
from domain.ids import ShopId
from domain.jobs import Job
from domain.risk.service import recompute_risk
from domain.settings import Settings
from domain.shop.models import Role
from domain.shop.service import create_api_key
from kizuki.events import RedisEventBus, channel_name
from tests.api.conftest import RecordingJobQueue, live_server
from tests.domain.risk.shops import AS_OF, RecordingJobs, current_scores, edge_case_shop

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
# The worker's own job function, fed the jobs the recompute enqueued, in a process of its own.
WORKER = """
import asyncio, json, sys
from redis.asyncio import Redis
from kizuki.events import RedisEventBus
from workers.diagnostics import publish_event

async def main() -> None:
    redis = Redis.from_url(sys.argv[1])
    try:
        ctx = {"events": RedisEventBus(redis)}
        for kwargs in json.loads(sys.stdin.read()):
            await publish_event(ctx, **kwargs)
    finally:
        await redis.aclose()

asyncio.run(main())
"""
CHANGES = """
subscription($bands: [RiskBand!]) {
  riskScoreChanged(bands: $bands) { customerId previousBand band probability topSign asOf }
}"""


@pytest.fixture
async def redis(redis_available: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_available)
    yield client
    await client.aclose()


async def receive(ws: ClientConnection, wait: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


async def until_subscribers(redis: Redis, channel: str, count: int) -> None:
    for _ in range(500):
        if dict(await redis.pubsub_numsub(channel)).get(channel.encode(), 0) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscriptions never reached Redis")


async def test_a_recompute_reaches_its_shops_subscribers_through_the_worker_and_redis(
    settings: Settings,
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    redis_available: str,
) -> None:
    mine = await edge_case_shop(session, regulars=3)
    theirs = await edge_case_shop(session, regulars=3)
    jobs = RecordingJobs()
    await recompute_risk(session, ShopId(theirs.shop.id), as_of=AS_OF, jobs=jobs)
    await recompute_risk(session, ShopId(mine.shop.id), as_of=AS_OF, jobs=jobs)
    _, key = await create_api_key(session, ShopId(mine.shop.id), Role.ANALYST, name="live")
    scores = await current_scores(session, mine.shop)
    await session.commit()
    published = [kwargs for job, _, kwargs in jobs.enqueued if job is Job.PUBLISH_EVENT]
    # Every customer of both shops went from no score to a band.
    assert len(published) == 2 * len(scores)
    band = scores[mine.id_of("regular0")].band
    in_band = {encode_id("Customer", c) for c, score in scores.items() if score.band == band}
    assert 0 < len(in_band) < len(scores)
    app = create_app(
        settings, sessions=sessions, job_queue=RecordingJobQueue(), events=RedisEventBus(redis)
    )
    channel = channel_name(mine.shop.id, Topic.RISK_CHANGED)

    async with (
        live_server(app) as address,
        connect(
            f"ws://{address}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws,
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        assert await receive(ws) == {"type": "connection_ack"}
        for number, variables in enumerate(({"bands": [band.upper()]}, {})):
            payload = {"query": CHANGES, "variables": variables}
            await ws.send(json.dumps({"id": str(number), "type": "subscribe", "payload": payload}))
            await until_subscribers(redis, channel, number + 1)
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            redis_available,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(
            worker.communicate(json.dumps(published).encode()), timeout=30
        )
        assert worker.returncode == 0, stderr.decode()

        received = [await receive(ws) for _ in range(len(scores) + len(in_band))]
        with pytest.raises(TimeoutError):
            await receive(ws, wait=0.5)

    changes: dict[str, list[dict[str, Any]]] = {"0": [], "1": []}
    for message in received:
        assert message["type"] == "next"
        changes[message["id"]].append(message["payload"]["data"]["riskScoreChanged"])
    everyone = {encode_id("Customer", c): score for c, score in scores.items()}
    assert {change["customerId"] for change in changes["1"]} == set(everyone)
    assert {change["customerId"] for change in changes["0"]} == in_band
    for change in changes["1"]:
        score = everyone[change["customerId"]]
        assert change["previousBand"] is None
        assert change["band"] == score.band.upper()
        assert change["probability"] == score.probability
        top = score.reasons[0]["sign"].upper() if score.reasons else None
        assert change["topSign"] == top
        assert change["asOf"] == AS_OF.isoformat()
