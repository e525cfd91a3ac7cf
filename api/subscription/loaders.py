import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from api.batching import by_key, grouped
from domain.subscription.service import (
    SubscriptionEventRow,
    SubscriptionRow,
    events_by_subscription,
    get_subscriptions,
    subscriptions_by_customer,
)

if TYPE_CHECKING:
    from api.context import Context


def subscriptions(context: "Context") -> DataLoader[uuid.UUID, SubscriptionRow | None]:
    return by_key(context, get_subscriptions)


def subscriptions_of_customer(context: "Context") -> DataLoader[uuid.UUID, list[SubscriptionRow]]:
    return grouped(context, subscriptions_by_customer)


def events_of_subscription(
    context: "Context",
) -> DataLoader[uuid.UUID, list[SubscriptionEventRow]]:
    return grouped(context, events_by_subscription)
