"""Test-side subscription: listen to an `EventBus` in the background and read what arrived."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from domain.events import Event, EventBus, Topic
from kizuki.events import channel_name


async def until(condition: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> None:
    """Wait until `condition()` holds, failing the test after `within` seconds."""
    async with asyncio.timeout(within):
        # Polled: Redis's subscriber count has no change notification to wait on.
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def redis_subscribers(
    redis: Redis, shop_id: uuid.UUID, topic: Topic
) -> Callable[[], Awaitable[int]]:
    """`PUBSUB NUMSUB` of the (shop, topic) channel, as Redis counts it."""

    async def count() -> int:
        [(_, subscribers)] = await redis.pubsub_numsub(channel_name(shop_id, topic))
        return int(subscribers)

    return count


@dataclass
class Listener:
    received: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)

    async def next(self, *, within: float = 5.0) -> Event:
        async with asyncio.timeout(within):
            return await self.received.get()

    async def assert_nothing_more(self, *, wait: float = 0.1) -> None:
        await asyncio.sleep(wait)
        assert self.received.empty(), f"unexpected events: {self.received}"


@contextlib.asynccontextmanager
async def listening(
    bus: EventBus,
    shop_id: uuid.UUID,
    topic: Topic,
    subscribers: Callable[[], Awaitable[int]],
    *,
    expected: int = 1,
) -> AsyncIterator[Listener]:
    """Subscribe in a background task; yield once `subscribers()` reaches `expected`."""
    listener = Listener()

    async def pump() -> None:
        async for event in bus.subscribe(shop_id, topic):
            listener.received.put_nowait(event)

    task = asyncio.create_task(pump())
    try:
        await until(lambda: _at_least(subscribers, expected, task))
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _at_least(
    subscribers: Callable[[], Awaitable[int]], expected: int, task: asyncio.Task[None]
) -> bool:
    if task.done():
        task.result()  # a subscriber that died raises its error here
    return await subscribers() >= expected
