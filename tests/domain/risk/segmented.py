"""A shop whose first-time buyers come back at a pace set by their first product."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from domain.connection.models import Connection
from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.aggregates import recompute_customer_aggregates
from domain.order.models import Order, OrderLine, OrderStatus, Product
from domain.shop.models import Shop
from tests.domain.risk.shops import AS_OF, LONG_AGO, new_order
from tests.factories.customer import make_connection
from tests.factories.shop import make_shop

# Days from the first purchase to the second, by first product.
RETURN_DAYS = {"A": 20, "B": 80}
# The probes' only purchase, this many days before `AS_OF`.
PROBE_GAP_DAYS = 30


@dataclass(frozen=True, slots=True)
class SegmentedShop:
    shop: Shop
    connection: Connection
    products: dict[str, Product]
    # One first-time buyer of each product, bought `PROBE_GAP_DAYS` before `AS_OF`, alike
    # in everything else.
    probes: dict[str, Customer]


async def add_product(
    session: AsyncSession, shop: Shop, connection: Connection, external_id: str
) -> Product:
    product = Product(
        shop_id=shop.id, connection_id=connection.id, external_id=external_id, title=external_id
    )
    session.add(product)
    await session.flush()
    return product


def order_of(
    customer: Customer,
    connection: Connection,
    at: datetime,
    products: list[Product | None],
    *,
    status: OrderStatus = OrderStatus.FULFILLED,
) -> tuple[Order, list[OrderLine]]:
    """An order of 3,000 yen with one line per entry of `products` (None: no product)."""
    order = new_order(customer, connection, at=at, quantity=len(products), status=status)
    lines = [
        OrderLine(
            shop_id=customer.shop_id,
            order_id=order.id,
            position=position,
            product_id=None if product is None else product.id,
            title="item",
            amount=3000 // len(products),
        )
        for position, product in enumerate(products, start=1)
    ]
    return order, lines


async def add_all(
    session: AsyncSession,
    customers: list[Customer],
    orders: list[tuple[Order, list[OrderLine]]],
) -> None:
    """Customers, then orders, then lines: each table after those it refers to; then the
    order aggregates (first product included) of every customer involved, as ingest keeps them."""
    session.add_all(customers)
    await session.flush()
    session.add_all([order for order, _ in orders])
    await session.flush()
    session.add_all([line for _, lines in orders for line in lines])
    await session.flush()
    involved = {customer.id for customer in customers} | {order.customer_id for order, _ in orders}
    shops = {customer.shop_id for customer in customers} | {order.shop_id for order, _ in orders}
    for shop_id in shops:
        await recompute_customer_aggregates(session, ShopId(shop_id), involved, currency="JPY")


def new_customer(shop: Shop, name: str) -> Customer:
    return Customer(shop_id=shop.id, display_name=name, created_at=LONG_AGO)


async def segmented_shop(
    session: AsyncSession, *, per_product: int = 150, seed: int = 5
) -> SegmentedShop:
    """`per_product` customers per product of `RETURN_DAYS`, first purchase 100-500 days
    before `AS_OF`; 70% come back (± 3 days of the product's pace), once. Plus the probes."""
    rng = np.random.default_rng(seed)
    shop = await make_shop(session)
    connection = await make_connection(session, shop=shop)
    products = {
        name: await add_product(session, shop, connection, f"sku-{name}") for name in RETURN_DAYS
    }
    customers: list[Customer] = []
    orders: list[tuple[Order, list[OrderLine]]] = []
    for name, pace in RETURN_DAYS.items():
        for n in range(per_product):
            customer = new_customer(shop, f"{name}{n}")
            customers.append(customer)
            first = AS_OF - timedelta(days=float(rng.uniform(100, 500)))
            orders.append(order_of(customer, connection, first, [products[name]]))
            if rng.random() < 0.7:
                second = first + timedelta(days=pace + int(rng.integers(-3, 4)))
                orders.append(order_of(customer, connection, second, [products[name]]))
    probes = {name: new_customer(shop, f"probe-{name}") for name in RETURN_DAYS}
    for name, probe in probes.items():
        customers.append(probe)
        at = AS_OF - timedelta(days=PROBE_GAP_DAYS)
        orders.append(order_of(probe, connection, at, [products[name]]))
    await add_all(session, customers, orders)
    return SegmentedShop(shop, connection, products, probes)
