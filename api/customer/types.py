import uuid
from collections.abc import Awaitable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import strawberry
from graphql import FieldNode

from api.batching import loaded, now_or_later
from api.connection.types import StoreConnection
from api.context import Info
from api.fields import field
from api.lookahead import arguments_of, fields_at, node_selects, selects
from api.money import Money, money
from api.order.loaders import OrderPage
from api.order.types import Order, fill_lines, prefetch_lines
from api.relay import Connection, Node, encode_id, page_request, to_connection
from api.subscription.types import Subscription
from domain.customer.service import CustomerRow, CustomerSort, IdentityRow
from domain.errors import DomainError
from domain.order.service import ORDER_SORTS, OrderRow, OrderSort
from domain.pagination import Page

strawberry.enum(CustomerSort, name="CustomerSortKey")


@strawberry.type(description="The customer as one mall account knows them.")
class CustomerIdentity(Node):
    platform: str
    external_id: str = strawberry.field(description="The customer's id on that mall.")
    email: str | None
    email_masked: bool = strawberry.field(
        description="The mall gave a relay address (Amazon, Rakuten), not the real one."
    )
    connection_key: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: IdentityRow) -> "CustomerIdentity":
        return cls(
            id=encode_id("CustomerIdentity", row.id),
            platform=row.platform,
            external_id=row.external_id,
            email=row.email,
            email_masked=row.email_masked,
            connection_key=row.connection_id,
        )

    @strawberry.field
    async def connection(self, info: Info) -> StoreConnection:
        row = await info.context.loaders.connection.load(self.connection_key)
        if row is None:
            raise LookupError(f"identity {self.id} has no connection in its shop")
        return StoreConnection.from_row(row)


@strawberry.type(description="One person, unified over every mall they bought on.")
class Customer(Node):
    display_name: str
    email: str | None
    phone: str | None
    birth_date: date | None
    marketing_restricted: bool = strawberry.field(
        description="Known only from a mall whose terms forbid marketing to them: never targeted."
    )
    first_order_at: datetime | None
    last_order_at: datetime | None
    order_count: int
    total_spent: Money
    created_at: datetime
    key: strawberry.Private[uuid.UUID]
    prefilled_identities: strawberry.Private[list[CustomerIdentity] | None] = None
    prefilled_subscriptions: strawberry.Private[list[Subscription] | None] = None

    @classmethod
    def from_row(cls, row: CustomerRow) -> "Customer":
        return cls(
            id=encode_id("Customer", row.id),
            display_name=row.display_name,
            email=row.email,
            phone=row.phone,
            birth_date=row.birth_date,
            marketing_restricted=row.marketing_restricted,
            first_order_at=row.first_order_at,
            last_order_at=row.last_order_at,
            order_count=row.order_count,
            total_spent=money(row.total_spent, row.currency),
            created_at=row.created_at,
            key=row.id,
        )

    @field("Oldest first.", graphql_type=list[CustomerIdentity], prefilled="prefilled_identities")
    def identities(self, info: Info) -> list[CustomerIdentity] | Awaitable[list[CustomerIdentity]]:
        return now_or_later(
            info.context.loaders.identities_of_customer.load(self.key),
            lambda rows: [CustomerIdentity.from_row(row) for row in rows],
        )

    @field("The customer's orders, oldest first unless `reverse`.", graphql_type=Connection[Order])
    def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        sort_key: OrderSort = OrderSort.ORDERED_AT,
        reverse: bool = False,
    ) -> Connection[Order] | Awaitable[Connection[Order]]:
        page = order_page(first, after, last, before, sort_key, reverse)
        loaders = info.context.loaders
        pending = loaders.orders_of_customer.load((self.key, page))

        def connect(rows: Page[OrderRow]) -> Connection[Order]:
            return to_connection(
                rows,
                sort_key=page.sort.name,
                column=ORDER_SORTS[page.sort],
                node=Order.from_row,
                count=lambda: loaders.order_count_of_customer.load(self.key),
            )

        if loaded(pending):
            # Preloaded with the customer page (`prefetch_children`), lines included.
            connection = connect(pending.result())
            if selects(info, "edges", "node", "lines"):
                fill_lines(info, [edge.node for edge in connection.edges])
            return connection

        async def later() -> Connection[Order]:
            connection = connect(await pending)
            if selects(info, "edges", "node", "lines"):
                await prefetch_lines(info, [edge.node for edge in connection.edges])
            return connection

        return later()

    @field(
        "Recurring orders, oldest first.",
        graphql_type=list[Subscription],
        prefilled="prefilled_subscriptions",
    )
    def subscriptions(self, info: Info) -> list[Subscription] | Awaitable[list[Subscription]]:
        return now_or_later(
            info.context.loaders.subscriptions_of_customer.load(self.key),
            lambda rows: [Subscription.from_row(row) for row in rows],
        )


def order_page(
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    sort_key: OrderSort,
    reverse: bool,
) -> OrderPage:
    """The page `Customer.orders` asks its loader for."""
    request = page_request(
        first=first,
        after=after,
        last=last,
        before=before,
        sort_key=sort_key.name,
        column=ORDER_SORTS[sort_key],
        reverse=reverse,
    )
    return OrderPage(request, sort_key)


def _written_order_page(node: FieldNode, variables: Mapping[str, Any]) -> OrderPage | None:
    """The page an `orders` selection will ask for; None when it cannot be told in advance."""
    arguments = arguments_of(node, variables)
    sort = arguments.get("sortKey") or OrderSort.ORDERED_AT
    try:
        return order_page(
            arguments.get("first"),
            arguments.get("after"),
            arguments.get("last"),
            arguments.get("before"),
            OrderSort[sort]
            if isinstance(sort, str) and sort in OrderSort.__members__
            else OrderSort(sort),
            bool(arguments.get("reverse") or False),
        )
    except (DomainError, ValueError, TypeError):
        # The field itself will refuse these arguments, with the error at its own path.
        return None


async def prefetch_children(info: Info, customers: Sequence[Customer]) -> None:
    """Load what the selection asks of `customers` one batch per kind, before they resolve.

    Each customer then serves its identities, subscriptions and orders (with their lines)
    without awaiting: at a hundred customers, per-customer awaits cost more than the queries.
    """
    keys = [customer.key for customer in customers]
    if not keys:
        return
    loaders = info.context.loaders
    if selects(info, "edges", "node", "identities"):
        identities = await loaders.identities_of_customer.load_many(keys)
        for customer, rows in zip(customers, identities, strict=True):
            customer.prefilled_identities = [CustomerIdentity.from_row(row) for row in rows]
    if selects(info, "edges", "node", "subscriptions"):
        subscriptions = await loaders.subscriptions_of_customer.load_many(keys)
        for customer, held in zip(customers, subscriptions, strict=True):
            customer.prefilled_subscriptions = [Subscription.from_row(row) for row in held]
    fragments = info._raw_info.fragments
    for node in fields_at(info, "edges", "node", "orders"):
        page = _written_order_page(node, info.variable_values)
        if page is None:
            continue
        pages = await loaders.orders_of_customer.load_many([(key, page) for key in keys])
        if node_selects(node, fragments, "edges", "node", "lines"):
            order_ids = [order.id for rows in pages for order in rows.items]
            await loaders.lines_of_order.load_many(order_ids)
