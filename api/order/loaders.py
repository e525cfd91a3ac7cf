import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from api.batching import by_key, grouped
from domain.order.service import (
    OrderLineRow,
    OrderRow,
    OrderSort,
    count_orders_by_customer,
    get_orders,
    lines_by_order,
    orders_by_customer,
)
from domain.pagination import Page, PageRequest

if TYPE_CHECKING:
    from api.context import Context


@dataclass(frozen=True, slots=True)
class OrderPage:
    """Which page of a customer's orders: the same for every customer in one selection."""

    request: PageRequest
    sort: OrderSort


def orders(context: "Context") -> DataLoader[uuid.UUID, OrderRow | None]:
    return by_key(context, get_orders)


def lines_of_order(context: "Context") -> DataLoader[uuid.UUID, list[OrderLineRow]]:
    return grouped(context, lines_by_order)


def orders_of_customer(
    context: "Context",
) -> DataLoader[tuple[uuid.UUID, OrderPage], Page[OrderRow]]:
    """Pages of customers' orders: one windowed query per distinct page shape in a batch."""

    async def load(keys: list[tuple[uuid.UUID, OrderPage]]) -> list[Page[OrderRow]]:
        customers_by_page: dict[OrderPage, list[uuid.UUID]] = defaultdict(list)
        for customer_id, page in keys:
            customers_by_page[page].append(customer_id)
        found: dict[tuple[uuid.UUID, OrderPage], Page[OrderRow]] = {}
        for page, customer_ids in customers_by_page.items():
            pages = await context.run(
                orders_by_customer, customer_ids, page.request, sort=page.sort
            )
            found.update(((customer_id, page), pages[customer_id]) for customer_id in customer_ids)
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)


def order_counts_of_customer(context: "Context") -> DataLoader[uuid.UUID, int]:
    async def load(keys: list[uuid.UUID]) -> list[int]:
        counts = await context.run(count_orders_by_customer, keys)
        return [counts[key] for key in keys]

    return DataLoader(load_fn=load)
