import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.batching import now_or_later
from api.context import Info
from api.fields import field
from api.money import Money, money
from api.relay import Node, encode_id
from domain.order.models import OrderStatus
from domain.order.service import OrderLineRow, OrderRow, OrderSort, lines_by_order

if TYPE_CHECKING:
    from api.customer.types import Customer

strawberry.enum(OrderStatus, name="OrderStatus")
strawberry.enum(OrderSort, name="OrderSortKey")


@strawberry.type
class OrderLine:
    position: int
    sku: str | None
    title: str
    quantity: int
    unit_price: Money | None
    amount: Money

    @classmethod
    def from_row(cls, row: OrderLineRow, currency: str) -> "OrderLine":
        return cls(
            position=row.position,
            sku=row.sku,
            title=row.title,
            quantity=row.quantity,
            unit_price=None if row.unit_price is None else money(row.unit_price, currency),
            amount=money(row.amount, currency),
        )


@strawberry.type(description="An order from one mall.")
class Order(Node):
    external_id: str = strawberry.field(description="The order's number on its mall.")
    platform: str
    ordered_at: datetime
    status: OrderStatus
    total: Money
    item_quantity: int
    key: strawberry.Private[uuid.UUID]
    customer_key: strawberry.Private[uuid.UUID]
    prefilled_lines: strawberry.Private[list[OrderLine] | None] = None

    @classmethod
    def from_row(cls, row: OrderRow) -> "Order":
        return cls(
            id=encode_id("Order", row.id),
            external_id=row.external_id,
            platform=row.platform,
            ordered_at=row.ordered_at,
            status=row.status,
            total=money(row.total_amount, row.currency),
            item_quantity=row.item_quantity,
            key=row.id,
            customer_key=row.customer_id,
        )

    @field("By position.", graphql_type=list[OrderLine], prefilled="prefilled_lines")
    def lines(self, info: Info) -> list[OrderLine] | Awaitable[list[OrderLine]]:
        return now_or_later(info.context.loaders.lines_of_order.load(self.key), self._lines)

    def _lines(self, rows: Sequence[OrderLineRow]) -> list[OrderLine]:
        currency = self.total.currency
        return [OrderLine.from_row(row, currency) for row in rows]

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("api.customer.types")]:
        # Imported here: customers list their orders, so the two modules refer to each other.
        from api.customer.types import Customer

        row = await info.context.loaders.customer.load(self.customer_key)
        if row is None:
            raise LookupError(f"order {self.key} has no customer in its shop")
        return Customer.from_row(row)


async def prefetch_lines(info: Info, orders: Sequence[Order]) -> None:
    """Load the lines of `orders` in one query and give each order its own."""
    if orders:
        lines = await info.context.run(lines_by_order, [order.key for order in orders])
        for order in orders:
            order.prefilled_lines = order._lines(lines[order.key])
