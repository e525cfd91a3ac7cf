"""Orders with their lines, and the products the lines name.

An order is keyed by (connection, external id). A newer version replaces the stored row and
its lines as a set; an older or identical one changes nothing.
"""

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import delete, select

from domain.db import AsyncSession
from domain.ids import new_id
from domain.ingest.context import Counts, IngestContext, Touched, is_older, newest_by_key
from domain.ingest.customers import Buyer
from domain.ingest.statements import (
    chunked,
    execute_many,
    fetch_all,
    guarded_upsert,
    insert_or_ignore,
    insert_rows,
    one_of,
    returning_many,
    table_of,
)
from domain.order.models import Order, OrderLine, Product
from domain.platforms import OrderLineRecord, OrderRecord

_JSON = msgspec.json.Encoder()
_ORDER = table_of(Order)
_LINE = table_of(OrderLine)
_PRODUCT = table_of(Product)

_UPDATED_COLUMNS = (
    "customer_id",
    "identity_id",
    "ordered_at",
    "status",
    "currency",
    "total_amount",
    "refunded_amount",
    "item_quantity",
    "subscription_external_id",
    "source_updated_at",
    "source_hash",
)


@dataclass(frozen=True, slots=True)
class _Stored:
    order_id: uuid.UUID
    customer_id: uuid.UUID
    source_updated_at: datetime | None
    source_hash: str | None


def record_digest(record: OrderRecord) -> str:
    """A digest of everything stored from the record, lines included (times are UTC).

    The record is hashed as msgspec's JSON of it (every field by name, in C): a third of
    what hashing its `repr` cost per order.
    """
    return hashlib.blake2b(_JSON.encode(record), digest_size=16).hexdigest()


async def _load(
    session: AsyncSession, context: IngestContext, external_ids: Sequence[str]
) -> dict[str, _Stored]:
    stored: dict[str, _Stored] = {}
    for chunk in chunked(external_ids):
        order = _ORDER.c
        statement = select(
            order.external_id,
            order.id,
            order.customer_id,
            order.source_updated_at,
            order.source_hash,
        ).where(
            order.shop_id == context.shop_id,
            order.connection_id == context.connection_id,
            one_of(session, order.external_id, chunk),
        )
        for external_id, order_id, customer_id, updated_at, digest in await fetch_all(
            session, statement
        ):
            stored[external_id] = _Stored(order_id, customer_id, updated_at, digest)
    return stored


def _order_row(
    context: IngestContext,
    order_id: uuid.UUID,
    buyer: Buyer,
    record: OrderRecord,
    digest: str,
) -> dict[str, Any]:
    return {
        "shop_id": context.shop_id,
        "id": order_id,
        "connection_id": context.connection_id,
        "customer_id": buyer.customer_id,
        "identity_id": buyer.identity_id,
        "external_id": record.external_id,
        "ordered_at": record.ordered_at,
        "status": record.status.value,
        "currency": record.currency,
        "total_amount": record.total_amount,
        "refunded_amount": record.refunded_amount,
        "item_quantity": record.quantity,
        "subscription_external_id": record.subscription_external_id,
        "source_updated_at": record.source_updated_at,
        "source_hash": digest,
        "created_at": context.now,
    }


def _line_rows(
    context: IngestContext,
    order_id: uuid.UUID,
    lines: Sequence[OrderLineRecord],
    products: Mapping[str, uuid.UUID],
) -> list[dict[str, Any]]:
    return [
        {
            "shop_id": context.shop_id,
            "id": new_id(),
            "order_id": order_id,
            "position": position,
            "product_id": products.get(line.product_external_id or ""),
            "sku": line.sku[:200] if line.sku else None,
            "title": line.title[:500],
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "amount": line.amount,
        }
        for position, line in enumerate(lines, start=1)
    ]


async def _ensure_products(
    session: AsyncSession, context: IngestContext, lines: Sequence[OrderLineRecord]
) -> dict[str, uuid.UUID]:
    """Product ids by external id; products first seen here are created from the line."""
    first: dict[str, OrderLineRecord] = {}
    for line in lines:
        if line.product_external_id:
            first.setdefault(line.product_external_id, line)
    if not first:
        return {}

    async def known(external_ids: Sequence[str]) -> dict[str, uuid.UUID]:
        found: dict[str, uuid.UUID] = {}
        for chunk in chunked(external_ids):
            product = _PRODUCT.c
            statement = select(product.external_id, product.id).where(
                product.shop_id == context.shop_id,
                product.connection_id == context.connection_id,
                one_of(session, product.external_id, chunk),
            )
            found.update(dict(await fetch_all(session, statement)))
        return found

    products = await known(sorted(first))
    missing = sorted(first.keys() - products.keys())
    if missing:
        rows = [
            {
                "shop_id": context.shop_id,
                "id": new_id(),
                "connection_id": context.connection_id,
                "external_id": external_id,
                "sku": first[external_id].sku,
                "title": first[external_id].title[:500],
                "price": first[external_id].unit_price,
                "currency": context.currency,
            }
            for external_id in missing
        ]
        statement = insert_or_ignore(session, _PRODUCT, ("shop_id", "connection_id", "external_id"))
        await execute_many(session, statement, rows)
        products.update(await known(missing))
    return products


@dataclass(slots=True)
class OrderPlan:
    """What `write_orders` will do with a batch's orders: rows to insert, rows to replace."""

    new_orders: list[dict[str, Any]]
    new_records: list[tuple[uuid.UUID, OrderRecord]]
    changed: dict[uuid.UUID, tuple[OrderRecord, dict[str, Any]]]
    unchanged: int
    # The customer each stored order belonged to before this batch.
    stored_customers: dict[uuid.UUID, uuid.UUID]

    @property
    def receiving_changed(self) -> set[uuid.UUID]:
        """Customers that changed orders will belong to."""
        return {row["customer_id"] for _, row in self.changed.values()}


async def plan_orders(
    session: AsyncSession,
    context: IngestContext,
    records: Sequence[OrderRecord],
    buyers: Mapping[str, Buyer],
) -> OrderPlan:
    """New orders to insert, changed ones to replace; older or identical ones are left alone.
    Reads, never writes."""
    newest = newest_by_key((record.external_id, record) for record in records)
    stored = await _load(session, context, sorted(newest))
    plan = OrderPlan(
        [], [], {}, 0, {found.order_id: found.customer_id for found in stored.values()}
    )
    for external_id, record in newest.items():
        digest = record_digest(record)
        buyer = buyers[record.customer_external_id]
        found = stored.get(external_id)
        if found is None:
            order_id = new_id()
            plan.new_orders.append(_order_row(context, order_id, buyer, record, digest))
            plan.new_records.append((order_id, record))
        elif found.source_hash == digest or is_older(
            record.source_updated_at, found.source_updated_at
        ):
            plan.unchanged += 1
        else:
            row = _order_row(context, found.order_id, buyer, record, digest)
            plan.changed[found.order_id] = (record, row)
    return plan


async def ensure_new_products(
    session: AsyncSession, context: IngestContext, plan: OrderPlan
) -> dict[str, uuid.UUID]:
    """Product ids by external id for the lines of the plan's new orders, created if new."""
    return await _ensure_products(
        session, context, [line for _, record in plan.new_records for line in record.lines]
    )


def first_products(
    plan: OrderPlan, products: Mapping[str, uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Each new order's first product (of its first line naming one), by order id; orders
    whose lines name none are left out. `products` holds those of `ensure_new_products`."""
    found: dict[uuid.UUID, uuid.UUID] = {}
    for order_id, record in plan.new_records:
        for line in record.lines:
            if line.product_external_id:
                found[order_id] = products[line.product_external_id]
                break
    return found


async def write_orders(
    session: AsyncSession,
    context: IngestContext,
    plan: OrderPlan,
    products: Mapping[str, uuid.UUID],
    touched: Touched,
    *,
    with_lines: bool,
) -> Counts:
    """Insert the new orders, replace the changed ones (lines as a set) unless a newer version
    was stored meanwhile. `products`: those of `ensure_new_products`.

    Without `with_lines` the records carry no line data: stored lines of orders that arrive
    without lines are kept.
    """
    changed = plan.changed
    updated = await returning_many(
        session,
        guarded_upsert(
            session,
            _ORDER,
            keys=("shop_id", "connection_id", "external_id"),
            update=_UPDATED_COLUMNS,
            guard="source_updated_at",
        ).returning(_ORDER.c.id),
        [row for _, row in changed.values()],
    )
    relined = [
        (order_id, changed[order_id][0])
        for order_id in updated
        if with_lines or changed[order_id][0].lines
    ]
    products = {
        **products,
        **await _ensure_products(
            session,
            context,
            [
                line
                for _, record in relined
                for line in record.lines
                if (line.product_external_id or "") not in products
            ],
        ),
    }
    await insert_rows(session, _ORDER, plan.new_orders)
    for chunk in chunked([order_id for order_id, _ in relined]):
        await session.exec(
            delete(_LINE).where(
                _LINE.c.shop_id == context.shop_id, one_of(session, _LINE.c.order_id, chunk)
            )
        )
    line_rows = [
        row
        for order_id, record in [*plan.new_records, *relined]
        for row in _line_rows(context, order_id, record.lines, products)
    ]
    await insert_rows(session, _LINE, line_rows)

    touched.add((row["customer_id"] for row in plan.new_orders), orders=True)
    # An updated order may have moved to another customer: both totals change.
    touched.add((changed[order_id][1]["customer_id"] for order_id in updated), orders=True)
    touched.add((plan.stored_customers[order_id] for order_id in updated), orders=True)
    return Counts(
        inserted=len(plan.new_orders),
        updated=len(updated),
        unchanged=plan.unchanged + len(changed) - len(updated),
    )
