import uuid
from datetime import datetime

import strawberry

from api.context import Info
from api.fields import field
from api.relay import Node, encode_id
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus
from domain.subscription.service import SubscriptionEventRow, SubscriptionRow

strawberry.enum(SubscriptionStatus, name="SubscriptionStatus")
strawberry.enum(SubscriptionEventKind, name="SubscriptionEventKind")


@strawberry.type(description="Something that happened to a subscription: a skip, a pause …")
class SubscriptionEvent:
    kind: SubscriptionEventKind
    occurred_at: datetime
    reason: str | None

    @classmethod
    def from_row(cls, row: SubscriptionEventRow) -> "SubscriptionEvent":
        return cls(kind=row.kind, occurred_at=row.occurred_at, reason=row.reason)


@strawberry.type(description="A recurring order (定期購入) of one customer.")
class Subscription(Node):
    external_id: str
    status: SubscriptionStatus
    interval_days: int
    product_title: str
    started_at: datetime
    cancelled_at: datetime | None
    next_delivery_at: datetime | None
    key: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: SubscriptionRow) -> "Subscription":
        return cls(
            id=encode_id("Subscription", row.id),
            external_id=row.external_id,
            status=row.status,
            interval_days=row.interval_days,
            product_title=row.product_title,
            started_at=row.started_at,
            cancelled_at=row.cancelled_at,
            next_delivery_at=row.next_delivery_at,
            key=row.id,
        )

    @field("In the order they happened.")
    async def events(self, info: Info) -> list[SubscriptionEvent]:
        rows = await info.context.loaders.events_of_subscription.load(self.key)
        return [SubscriptionEvent.from_row(row) for row in rows]
