"""The DataLoaders of one operation, each created on first use."""

import uuid
from functools import cached_property
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from api.connection import loaders as connection_loaders
from api.customer import loaders as customer_loaders
from api.order import loaders as order_loaders
from api.risk import loaders as risk_loaders
from api.subscription import loaders as subscription_loaders
from domain.connection.service import ConnectionRow
from domain.customer.evidence import IdentityEvidence, MergeRow
from domain.customer.service import CustomerRow, IdentityRow
from domain.order.service import OrderLineRow, OrderRow
from domain.pagination import Page
from domain.risk.queries import PointRow, ScoreRow
from domain.subscription.service import SubscriptionEventRow, SubscriptionRow

if TYPE_CHECKING:
    from api.context import Context


class Loaders:
    def __init__(self, context: "Context") -> None:
        self._context = context

    @cached_property
    def customer(self) -> DataLoader[uuid.UUID, CustomerRow | None]:
        return customer_loaders.customers(self._context)

    @cached_property
    def identity(self) -> DataLoader[uuid.UUID, IdentityRow | None]:
        return customer_loaders.identities(self._context)

    @cached_property
    def identities_of_customer(self) -> DataLoader[uuid.UUID, list[IdentityRow]]:
        return customer_loaders.identities_of_customer(self._context)

    @cached_property
    def merges_of_customer(self) -> DataLoader[uuid.UUID, list[MergeRow]]:
        return customer_loaders.merges_of_customer(self._context)

    @cached_property
    def evidence_of_customer(self) -> DataLoader[uuid.UUID, list[IdentityEvidence]]:
        return customer_loaders.evidence_of_customer(self._context)

    @cached_property
    def risk_of_customer(self) -> DataLoader[uuid.UUID, ScoreRow | None]:
        return risk_loaders.scores_of_customer(self._context)

    @cached_property
    def risk_history_of_customer(self) -> DataLoader[tuple[uuid.UUID, int], list[PointRow]]:
        return risk_loaders.history_of_customer(self._context)

    @cached_property
    def order(self) -> DataLoader[uuid.UUID, OrderRow | None]:
        return order_loaders.orders(self._context)

    @cached_property
    def orders_of_customer(
        self,
    ) -> DataLoader[tuple[uuid.UUID, order_loaders.OrderPage], Page[OrderRow]]:
        return order_loaders.orders_of_customer(self._context)

    @cached_property
    def order_count_of_customer(self) -> DataLoader[uuid.UUID, int]:
        return order_loaders.order_counts_of_customer(self._context)

    @cached_property
    def lines_of_order(self) -> DataLoader[uuid.UUID, list[OrderLineRow]]:
        return order_loaders.lines_of_order(self._context)

    @cached_property
    def subscription(self) -> DataLoader[uuid.UUID, SubscriptionRow | None]:
        return subscription_loaders.subscriptions(self._context)

    @cached_property
    def subscriptions_of_customer(self) -> DataLoader[uuid.UUID, list[SubscriptionRow]]:
        return subscription_loaders.subscriptions_of_customer(self._context)

    @cached_property
    def events_of_subscription(self) -> DataLoader[uuid.UUID, list[SubscriptionEventRow]]:
        return subscription_loaders.events_of_subscription(self._context)

    @cached_property
    def connection(self) -> DataLoader[uuid.UUID, ConnectionRow | None]:
        return connection_loaders.connections(self._context)
