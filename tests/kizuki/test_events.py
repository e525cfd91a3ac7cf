import asyncio
import gc
import logging
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from pathlib import Path

import pytest
from redis.asyncio import Redis

from domain.events import Event, EventBus, Topic
from kizuki.events import (
    InProcessEventBus,
    RedisEventBus,
    channel_name,
    decode_event,
    encode_event,
)
from tests.kizuki.subscribers import listening, redis_subscribers, until

ROOT = Path(__file__).resolve().parents[2]

# Both satisfy the protocol the API and the workers depend on (checked by mypy).
_in_process: EventBus = InProcessEventBus()
_over_redis: Callable[[Redis], EventBus] = RedisEventBus


def in_process_subscribers(
    bus: InProcessEventBus, shop_id: uuid.UUID, topic: Topic
) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        return bus.subscriber_count(shop_id, topic)

    return count


def ping(shop_id: uuid.UUID, n: int) -> Event:
    return Event(shop_id, Topic.PING, {"n": n})


async def test_in_process_subscriber_gets_only_its_shop_and_topic() -> None:
    bus = InProcessEventBus()
    shop, other_shop = uuid.uuid4(), uuid.uuid4()

    async with listening(
        bus, shop, Topic.PING, in_process_subscribers(bus, shop, Topic.PING)
    ) as listener:
        await bus.publish(ping(other_shop, 1))
        await bus.publish(Event(shop, Topic.RISK_CHANGED, {"n": 2}))
        await bus.publish(ping(shop, 3))

        assert await listener.next() == ping(shop, 3)
        await listener.assert_nothing_more()


async def test_in_process_subscribers_each_get_every_event_then_leave_nothing() -> None:
    bus = InProcessEventBus()
    shop = uuid.uuid4()
    count = in_process_subscribers(bus, shop, Topic.PING)

    async with (
        listening(bus, shop, Topic.PING, count, expected=1) as first,
        listening(bus, shop, Topic.PING, count, expected=2) as second,
    ):
        for n in range(3):
            await bus.publish(ping(shop, n))

        for listener in (first, second):
            assert [(await listener.next()).data["n"] for _ in range(3)] == [0, 1, 2]
        assert bus.subscriber_count(shop, Topic.PING) == 2

    assert bus.subscriber_count(shop, Topic.PING) == 0
    assert bus.total_subscribers() == 0


async def test_in_process_subscription_ends_when_closed_or_dropped() -> None:
    bus = InProcessEventBus()
    shop = uuid.uuid4()

    async with aclosing(bus.subscribe(shop, Topic.PING)) as events:
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        await bus.publish(ping(shop, 1))
        assert await waiting == ping(shop, 1)
    assert bus.total_subscribers() == 0

    # A consumer that drops the iterator without closing it: the loop's finaliser closes it.
    dropped = bus.subscribe(shop, Topic.PING)
    waiting = asyncio.ensure_future(anext(dropped))
    await asyncio.sleep(0)
    await bus.publish(ping(shop, 2))
    assert await waiting == ping(shop, 2)
    assert bus.total_subscribers() == 1
    del dropped, waiting
    gc.collect()
    await until(lambda: _is(bus.total_subscribers(), 0))


async def test_slow_in_process_subscriber_keeps_only_the_newest_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InProcessEventBus(max_pending=3)
    shop = uuid.uuid4()

    async with aclosing(bus.subscribe(shop, Topic.PING)) as events:
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        with caplog.at_level(logging.WARNING, logger="kizuki.events"):
            for n in range(10):  # the publisher never waits for the stalled consumer
                await bus.publish(ping(shop, n))

        received = [await waiting] + [await anext(events) for _ in range(2)]

    assert [event.data["n"] for event in received] == [7, 8, 9]
    assert "dropped 1 oldest events" in caplog.text


async def test_in_process_bus_refuses_what_redis_could_not_carry() -> None:
    bus = InProcessEventBus()

    with pytest.raises(ValueError, match="JSON cannot carry"):
        await bus.publish(Event(uuid.uuid4(), Topic.PING, {"x": float("nan")}))
    with pytest.raises(TypeError, match="not a JSON scalar"):
        await bus.publish(Event(uuid.uuid4(), Topic.PING, {"x": [1]}))  # type: ignore[dict-item]


def test_events_round_trip_through_json() -> None:
    event = Event(uuid.uuid4(), Topic.RISK_CHANGED, {"s": "気づき", "i": 3, "f": 0.5, "b": True})

    assert decode_event(encode_event(event)) == event
    assert decode_event(encode_event(Event(event.shop_id, Topic.PING, {"n": None}))).data == {
        "n": None
    }
    for bad in ("{", "[]", '{"shop_id": "x", "topic": "ping", "data": {}}'):
        with pytest.raises(ValueError):  # noqa: PT011 - each message differs; the type is the contract
            decode_event(bad)


def test_channel_names_carry_shop_and_topic() -> None:
    shop = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8057")

    assert channel_name(shop, Topic.RISK_CHANGED) == (
        "kizuki:events:01890a5d-ac96-774b-bcce-b302099a8057:risk.changed"
    )


async def test_redis_subscriber_gets_only_its_shop_and_topic(redis: Redis) -> None:
    bus = RedisEventBus(redis)
    shop, other_shop = uuid.uuid4(), uuid.uuid4()

    async with listening(bus, shop, Topic.PING, redis_subscribers(redis, shop, Topic.PING)) as lis:
        await bus.publish(ping(other_shop, 1))
        await bus.publish(Event(shop, Topic.RISK_CHANGED, {"n": 2}))
        await bus.publish(ping(shop, 3))

        assert await lis.next() == ping(shop, 3)
        await lis.assert_nothing_more()


async def test_redis_subscribers_each_get_every_event_then_unsubscribe(redis: Redis) -> None:
    bus = RedisEventBus(redis)
    shop = uuid.uuid4()
    count = redis_subscribers(redis, shop, Topic.PING)

    async with (
        listening(bus, shop, Topic.PING, count, expected=1) as first,
        listening(bus, shop, Topic.PING, count, expected=2) as second,
    ):
        for n in range(3):
            await bus.publish(ping(shop, n))

        for listener in (first, second):
            assert [(await listener.next()).data["n"] for _ in range(3)] == [0, 1, 2]

    await until(lambda: _equals(count, 0))


async def test_redis_subscription_closes_its_connection_when_closed(redis: Redis) -> None:
    bus = RedisEventBus(redis)
    shop = uuid.uuid4()
    count = redis_subscribers(redis, shop, Topic.PING)

    async with aclosing(bus.subscribe(shop, Topic.PING)) as events:
        waiting = asyncio.ensure_future(anext(events))
        await until(lambda: _equals(count, 1))
        await bus.publish(ping(shop, 1))
        assert await waiting == ping(shop, 1)

    await until(lambda: _equals(count, 0))


async def test_redis_subscriber_drops_malformed_and_misrouted_messages(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    bus = RedisEventBus(redis)
    shop = uuid.uuid4()
    channel = channel_name(shop, Topic.PING)

    async with listening(bus, shop, Topic.PING, redis_subscribers(redis, shop, Topic.PING)) as lis:
        with caplog.at_level(logging.WARNING, logger="kizuki.events"):
            await redis.publish(channel, b"\xff not json")
            await redis.publish(channel, f'{{"shop_id": "{shop}", "topic": "ping"}}')
            await redis.publish(channel, encode_event(ping(uuid.uuid4(), 1)))
            await redis.publish(channel, encode_event(Event(shop, Topic.RISK_CHANGED, {})))
            await redis.publish(channel, encode_event(ping(shop, 2)))

            assert await lis.next() == ping(shop, 2)
        await lis.assert_nothing_more()

    dropped = [r.getMessage() for r in caplog.records if r.name == "kizuki.events"]
    assert len(dropped) == 4, dropped
    assert all(message.startswith("dropped") for message in dropped)


PUBLISHER = """
import asyncio, os, sys, uuid
from redis.asyncio import Redis
from domain.events import Event, Topic
from kizuki.events import RedisEventBus

async def main() -> None:
    redis = Redis.from_url(sys.argv[1])
    try:
        event = Event(uuid.UUID(sys.argv[2]), Topic.PING, {"pid": os.getpid()})
        await RedisEventBus(redis).publish(event)
    finally:
        await redis.aclose()

asyncio.run(main())
"""


async def test_event_from_another_process_reaches_a_redis_subscriber(
    redis: Redis, redis_available: str
) -> None:
    bus = RedisEventBus(redis)
    shop = uuid.uuid4()

    async with listening(bus, shop, Topic.PING, redis_subscribers(redis, shop, Topic.PING)) as lis:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PUBLISHER,
            redis_available,
            str(shop),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, stderr.decode()

        event = await lis.next()

    assert event == Event(shop, Topic.PING, {"pid": process.pid})
    assert process.pid != os.getpid()


async def _equals(count: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await count() == expected


async def _is(value: int, expected: int) -> bool:
    return value == expected
