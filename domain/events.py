"""Events pushed to GraphQL subscribers: publish per shop and topic, subscribe to a stream.

Two implementations share this protocol: in-process (embedded shape) and Redis pub/sub
(production, so an event published by a worker reaches a subscriber on any API process).
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Topic(StrEnum):
    ORDERS_INGESTED = "orders.ingested"
    RISK_CHANGED = "risk.changed"
    MESSAGE_STATUS = "message.status"
    SYNC_PROGRESS = "sync.progress"
    PING = "ping"


@dataclass(frozen=True, slots=True)
class Event:
    shop_id: uuid.UUID
    topic: Topic
    # A small JSON object; subscribers re-read anything larger from the database.
    data: dict[str, str | int | float | bool | None]


class EventBus(Protocol):
    async def publish(self, event: Event) -> None:
        """Deliver to current subscribers of (shop, topic); no delivery to past or future ones."""
        ...

    def subscribe(self, shop_id: uuid.UUID, topic: Topic) -> AsyncIterator[Event]:
        """Events of one shop and topic from now on, until the consumer stops iterating."""
        ...
