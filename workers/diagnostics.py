"""Jobs that exercise the runtime itself: queue, database and event bus, end to end."""

import os
import uuid

from domain.events import Event, Topic
from domain.shop.service import require_shop
from kizuki.events import decode_event_data
from workers.context import WorkerContext, unit_of_work


async def ping(ctx: WorkerContext, *, shop_id: str) -> None:
    """Read the shop back from the database, then publish a PING event naming who answered."""
    async with unit_of_work(ctx) as uow:
        shop = await require_shop(uow.session, uuid.UUID(shop_id))
    data: dict[str, str | int | float | bool | None] = {
        "shop": shop.name,
        "job_id": ctx["job_id"],
        "job_try": ctx["job_try"],
        "pid": os.getpid(),
    }
    await ctx["events"].publish(Event(shop.id, Topic.PING, data))


async def publish_event(ctx: WorkerContext, *, shop_id: str, topic: str, data_json: str) -> None:
    """Publish an event that a committed unit of work asked for (bad arguments fail the job)."""
    event = Event(uuid.UUID(shop_id), Topic(topic), decode_event_data(data_json))
    await ctx["events"].publish(event)
