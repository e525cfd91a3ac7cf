"""The two `EventBus` implementations: in-process (embedded shape) and Redis pub/sub (production).

Both deliver an event only to subscribers of its exact (shop, topic) that are listening when
it is published; neither stores events. A subscription starts when its iterator is first
awaited and ends when the consumer closes it (`contextlib.aclosing`), is cancelled, or drops
it (then the event loop closes it on its next turn).
"""

import asyncio
import logging
import math
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from redis.asyncio import Redis

from domain.events import Event, Topic

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "kizuki:events"

EventValue = str | int | float | bool | None


def channel_name(shop_id: uuid.UUID, topic: Topic) -> str:
    """The Redis channel of one shop's topic: `kizuki:events:<shop uuid>:<topic>`."""
    return f"{CHANNEL_PREFIX}:{shop_id}:{topic.value}"


class _WireEvent(BaseModel):
    """An event as it travels over Redis: untrusted until validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shop_id: uuid.UUID
    topic: Topic
    data: dict[str, EventValue]


def encode_event(event: Event) -> str:
    """The JSON payload of `event`; refuses non-scalar values and NaN/infinity, which JSON lacks."""
    for key, value in event.data.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError(f"event data {key!r} is a {type(value).__name__}, not a JSON scalar")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"event data {key!r} is {value}, which JSON cannot carry")
    wire = _WireEvent(shop_id=event.shop_id, topic=event.topic, data=dict(event.data))
    return wire.model_dump_json()


_EVENT_DATA = TypeAdapter(dict[str, EventValue])


def decode_event_data(raw: str | bytes) -> dict[str, EventValue]:
    """Event data from JSON; raises `ValueError` unless it is an object of JSON scalars."""
    return _EVENT_DATA.validate_json(raw)


def decode_event(raw: str | bytes) -> Event:
    """An `Event` from its JSON payload; raises `ValueError` for anything malformed."""
    wire = _WireEvent.model_validate_json(raw)
    return Event(shop_id=wire.shop_id, topic=wire.topic, data=dict(wire.data))


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[Event]
    dropped: int = 0


@dataclass(eq=False)
class InProcessEventBus:
    """Events within one process; each subscriber buffers at most `max_pending` events.

    A subscriber that falls behind loses its oldest events, so a stalled consumer neither
    grows memory nor slows the publisher.
    """

    max_pending: int = 256
    _subscribers: dict[tuple[uuid.UUID, Topic], set[_Subscriber]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {self.max_pending}")

    async def publish(self, event: Event) -> None:
        # Refuse here what the Redis bus would refuse, so the embedded shape hides no bug.
        encode_event(event)
        for subscriber in tuple(self._subscribers.get((event.shop_id, event.topic), ())):
            if subscriber.queue.full():
                subscriber.queue.get_nowait()
                subscriber.dropped += 1
                if subscriber.dropped == 1 or subscriber.dropped % 1000 == 0:
                    logger.warning(
                        "slow subscriber to %s/%s: dropped %d oldest events so far",
                        event.shop_id,
                        event.topic.value,
                        subscriber.dropped,
                    )
            # Each subscriber gets its own copy, as it would from Redis.
            subscriber.queue.put_nowait(Event(event.shop_id, event.topic, dict(event.data)))

    async def subscribe(self, shop_id: uuid.UUID, topic: Topic) -> AsyncGenerator[Event, None]:
        key = (shop_id, topic)
        subscriber = _Subscriber(asyncio.Queue(maxsize=self.max_pending))
        self._subscribers.setdefault(key, set()).add(subscriber)
        try:
            while True:
                yield await subscriber.queue.get()
        finally:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[key]

    def subscriber_count(self, shop_id: uuid.UUID, topic: Topic) -> int:
        """How many subscriptions to (shop, topic) are open now."""
        return len(self._subscribers.get((shop_id, topic), ()))

    def total_subscribers(self) -> int:
        """How many subscriptions are open now, over all shops and topics."""
        return sum(len(subscribers) for subscribers in self._subscribers.values())


class RedisEventBus:
    """Events over Redis pub/sub, so a worker's event reaches a subscriber on any API process.

    Each subscription holds one Redis connection (a dedicated pub/sub connection) while open.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def publish(self, event: Event) -> None:
        await self._redis.publish(channel_name(event.shop_id, event.topic), encode_event(event))

    async def subscribe(self, shop_id: uuid.UUID, topic: Topic) -> AsyncGenerator[Event, None]:
        channel = channel_name(shop_id, topic)
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            while True:
                message: object = await pubsub.get_message(timeout=None)
                event = _accept(message, shop_id, topic, channel)
                if event is not None:
                    yield event
        finally:
            # Closing drops the connection, which unsubscribes it even after a cancelled read.
            await pubsub.aclose()  # type: ignore[no-untyped-call]


def _accept(message: object, shop_id: uuid.UUID, topic: Topic, channel: str) -> Event | None:
    """The event in a pub/sub message meant for this subscription, else None (logged)."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return None
    data = message.get("data")
    if not isinstance(data, str | bytes):
        logger.warning("dropped a non-text message on %s", channel)
        return None
    try:
        event = decode_event(data)
    except ValueError as error:  # pydantic's ValidationError is one
        logger.warning("dropped a malformed event on %s: %s", channel, _summary(error))
        return None
    if event.shop_id != shop_id or event.topic != topic:
        logger.warning(
            "dropped an event for %s/%s published on %s",
            event.shop_id,
            event.topic.value,
            channel,
        )
        return None
    return event


def _summary(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'payload'}: {item['msg']}"
            for item in error.errors()
        )
    return str(error)
