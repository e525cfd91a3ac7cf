"""Canonical records and database snapshots for the ingest tests."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import SQLModel, col
from sqlmodel import select as sm_select

from domain.connection.models import Connection
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest import ingest_batch
from domain.ingest.statements import fetch_all, table_of
from domain.order.models import Order, OrderLine, OrderStatus, Product
from domain.platforms import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    RecordBatch,
    SubscriptionEventRecord,
    SubscriptionRecord,
)
from domain.shop.models import Shop
from domain.subscription.models import (
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
)

T0 = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)


def order(
    external_id: str,
    customer: str = "c1",
    *,
    at: datetime = T0,
    total: int = 3280,
    status: OrderStatus = OrderStatus.FULFILLED,
    updated: datetime | None = None,
    lines: tuple[OrderLineRecord, ...] | None = None,
    platform: str = "shopify",
    **fields: Any,
) -> OrderRecord:
    return OrderRecord(
        platform=platform,
        external_id=external_id,
        customer_external_id=customer,
        ordered_at=at,
        total_amount=total,
        status=status,
        source_updated_at=updated or at,
        lines=lines if lines is not None else (OrderLineRecord(1, total, total, title="化粧水"),),
        **fields,
    )


async def snapshot(session: AsyncSession, shop: Shop) -> dict[str, list[tuple[Any, ...]]]:
    """Every ingest-owned row of the shop, ordered, for before/after comparisons."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    models: list[type[SQLModel]] = [
        Customer,
        CustomerIdentity,
        Order,
        OrderLine,
        Product,
        Subscription,
        SubscriptionEvent,
    ]
    for model in models:
        table = table_of(model)
        statement = select(table).where(table.c.shop_id == shop.id).order_by(table.c.id)
        tables[model.__name__] = [tuple(row) for row in await fetch_all(session, statement)]
    return tables


async def customer_of(session: AsyncSession, connection: Connection, external_id: str) -> Customer:
    statement = (
        sm_select(Customer)
        .join(CustomerIdentity, col(CustomerIdentity.customer_id) == col(Customer.id))
        .where(
            CustomerIdentity.connection_id == connection.id,
            CustomerIdentity.external_id == external_id,
        )
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).one()


def full_batch() -> RecordBatch:
    return RecordBatch(
        customers=(
            CustomerRecord(
                "shopify",
                "c1",
                display_name="山田 花子",
                email=" Hanako@Example.JP",
                phone="090-1234-5678",
                source_updated_at=T0,
            ),
            CustomerRecord("shopify", "c2", display_name="佐藤 美咲", source_updated_at=T0),
        ),
        orders=(
            order("o1", "c1", at=T0),
            order(
                "o2",
                "c1",
                at=T0 + timedelta(days=30),
                total=6560,
                lines=(
                    OrderLineRecord(2, 6560, 3280, sku="TONER", product_external_id="p1"),
                    OrderLineRecord(1, 0, 0, title="サンプル"),
                ),
            ),
            order("o3", "c3", at=T0 + timedelta(days=3), total=1980),
        ),
        subscriptions=(
            SubscriptionRecord(
                "shopify",
                "s1",
                "c2",
                started_at=T0,
                interval_days=30,
                product_title="青汁 定期便",
                source_updated_at=T0,
            ),
        ),
        subscription_events=(
            SubscriptionEventRecord("shopify", "s1", SubscriptionEventKind.STARTED, T0),
            SubscriptionEventRecord(
                "shopify",
                "s1",
                SubscriptionEventKind.SKIPPED,
                T0 + timedelta(days=30),
                event_id="evt-9",
                reason="在庫が余っている",
            ),
        ),
    )


async def ingest(
    session: AsyncSession, connection: Connection, batch: RecordBatch, **options: bool
) -> Any:
    return await ingest_batch(
        session, ShopId(connection.shop_id), ConnectionId(connection.id), batch, **options
    )


def mixed_batches(seed: int) -> tuple[RecordBatch, RecordBatch]:
    """Two batches of one connection: 10 customers and 200 orders of 30 customer keys in every
    status and two currencies, 0-3 lines each naming one of three products or none, at few
    distinct times (first purchases tie); then a stored order moving to a customer made there."""
    rng = random.Random(seed)
    statuses = list(OrderStatus)
    customers = tuple(
        CustomerRecord("shopify", f"c{n}", created_at=T0 + timedelta(days=rng.randint(-40, 40)))
        for n in range(0, 30, 3)
    )
    products = [None, None, "p1", "p2", "p3"]
    orders = tuple(
        order(
            f"o{n}",
            f"c{rng.randrange(30)}",
            at=T0 + timedelta(days=rng.randint(-20, 20), minutes=rng.choice([0, 1])),
            total=rng.randint(0, 9000),
            refunded_amount=rng.choice([0, 0, 100]),
            status=rng.choice(statuses),
            currency=rng.choice(["JPY", "JPY", "JPY", "USD"]),
            lines=tuple(
                OrderLineRecord(1, 100, product_external_id=rng.choice(products))
                for _ in range(rng.randint(0, 3))
            ),
        )
        for n in range(200)
    )
    moved = order("o0", "c-new", at=T0, updated=T0 + timedelta(days=90))
    return (
        RecordBatch(customers=customers, orders=orders),
        RecordBatch(orders=(moved, order("o-new", "c-new"))),
    )


async def customer_aggregates(session: AsyncSession) -> dict[uuid.UUID, tuple[Any, ...]]:
    """Every customer's order aggregates by id, read as columns (fresh values, not the
    session's identity map)."""
    customer = table_of(Customer).c
    columns = select(
        customer.id,
        customer.created_at,
        customer.order_count,
        customer.first_order_at,
        customer.last_order_at,
        customer.total_spent,
        customer.currency,
        customer.first_product_id,
    )
    return {row[0]: tuple(row[1:]) for row in await fetch_all(session, columns)}
