"""`events(topics)`: the caller's shop's events as they are published, several topics merged."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.context import Info
from api.errors import Forbidden
from api.fields import subscription
from api.permissions import allowed_topics
from domain.db import utcnow
from domain.events import Event, Topic

strawberry.enum(Topic, name="EventTopic")


@strawberry.type(description="Something that happened in the shop, as it happened.")
class ShopEvent:
    topic: Topic
    data: JSON = strawberry.field(description="A small JSON object; its keys depend on the topic.")
    occurred_at: datetime = strawberry.field(description="When this API process received it.")


async def _close(stream: AsyncIterator[Event]) -> None:
    # Async generators hold a bus subscription until closed; plain iterators have nothing to close.
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def merge(streams: Sequence[AsyncIterator[Event]]) -> AsyncIterator[Event]:
    """Events of several streams as each arrives; closing this closes them all."""
    if len(streams) == 1:
        try:
            async for event in streams[0]:
                yield event
        finally:
            await _close(streams[0])
        return
    queue: asyncio.Queue[Event] = asyncio.Queue()

    async def pump(stream: AsyncIterator[Event]) -> None:
        try:
            async for event in stream:
                await queue.put(event)
        finally:
            await _close(stream)

    tasks = [asyncio.create_task(pump(stream)) for stream in streams]
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait([getter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                # A stream ended or failed: surface its error rather than hang on the others.
                for task in done:
                    task.result()
                return
            yield getter.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _shop_events(streams: Sequence[AsyncIterator[Event]]) -> AsyncIterator[ShopEvent]:
    async for event in merge(streams):
        yield ShopEvent(topic=event.topic, data=JSON(dict(event.data)), occurred_at=utcnow())


@strawberry.type
class EventSubscription:
    @subscription("The shop's events of `topics` (all the key may see when omitted).")
    async def events(
        self, info: Info, topics: list[Topic] | None = None
    ) -> AsyncIterator[ShopEvent]:
        context = info.context
        allowed = allowed_topics(context.role)
        wanted = set(topics) if topics else set(allowed)
        refused = wanted - allowed
        if refused:
            names = ", ".join(sorted(topic.name for topic in refused))
            raise Forbidden(f"this API key may not subscribe to {names}")
        streams = [context.events.subscribe(context.shop_id, topic) for topic in sorted(wanted)]
        return _shop_events(streams)
