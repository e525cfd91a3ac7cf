"""The baseline of `bench/ingest.py`: the rows ingest would write, made without a lookup.

`baseline_rows` turns fetched records into rows of customer, customer_identity, product,
order and order_line as ingest stores them (contact data normalised and hashed); COPYing them
into a new shop is the limit the sync is compared with.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.ids import ShopId, new_id
from domain.ingest.contact import e164, normalise_email, sha256_hex
from domain.platforms import CustomerRecord, OrderRecord
from domain.tables import metadata

# Tables in the order of their foreign keys, each with its columns in the order of the rows.
ORDERED = ("customer", "customer_identity", "product", "order", "order_line")
_COLUMNS = {
    name: tuple(column.name for column in metadata.tables[name].columns) for name in ORDERED
}


def baseline_rows(
    shop_id: ShopId,
    connection_id: uuid.UUID,
    customers: Sequence[CustomerRecord],
    orders: Sequence[OrderRecord],
    now: datetime,
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows of customer, customer_identity, product, order and order_line for the records, as
    ingest stores them (contact data normalised and hashed), with no lookups or checks."""
    newest = {record.external_id: record for record in customers}
    first_order: dict[str, datetime] = {}
    for order in orders:
        at = first_order.get(order.customer_external_id)
        if at is None or order.ordered_at < at:
            first_order[order.customer_external_id] = order.ordered_at
    buyers: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in ORDERED}
    for key in sorted(newest.keys() | first_order.keys()):
        record = newest.get(key, CustomerRecord(platform="shopify", external_id=key))
        email = normalise_email(record.email)
        phone = e164(record.phone)
        customer_id, identity_id = new_id(), new_id()
        buyers[key] = (customer_id, identity_id)
        created = record.created_at or first_order.get(key, now)
        customer = {
            **dict.fromkeys(("birth_date", "first_order_at", "first_product_id", "last_order_at")),
            "shop_id": shop_id,
            "id": customer_id,
            "display_name": record.display_name[:200],
            "email": email.address if email else None,
            "phone": phone,
            "marketing_restricted": False,
            "order_count": 0,
            "total_spent": 0,
            "currency": "JPY",
            "created_at": created,
            "updated_at": now,
        }
        identity = {
            "shop_id": shop_id,
            "id": identity_id,
            "customer_id": customer_id,
            "connection_id": connection_id,
            "platform": "shopify",
            "external_id": key,
            "email": email.address if email else None,
            "email_hash": email.hash if email else None,
            "phone_hash": sha256_hex(phone) if phone else None,
            "email_masked": False,
            "merge_evidence": "{}",
            "source_updated_at": record.source_updated_at,
            "created_at": now,
        }
        rows["customer"].append(_row("customer", customer))
        rows["customer_identity"].append(_row("customer_identity", identity))
    products: dict[str, uuid.UUID] = {}
    for order in orders:
        customer_id, identity_id = buyers[order.customer_external_id]
        order_id = new_id()
        stored = {
            "shop_id": shop_id,
            "id": order_id,
            "connection_id": connection_id,
            "customer_id": customer_id,
            "identity_id": identity_id,
            "external_id": order.external_id,
            "ordered_at": order.ordered_at,
            "status": order.status.value,
            "currency": order.currency,
            "total_amount": order.total_amount,
            "refunded_amount": order.refunded_amount,
            "item_quantity": order.quantity,
            "subscription_external_id": order.subscription_external_id,
            "source_updated_at": order.source_updated_at,
            "source_hash": None,
            "created_at": now,
        }
        rows["order"].append(_row("order", stored))
        for position, line in enumerate(order.lines, start=1):
            product_id = None
            if line.product_external_id:
                product_id = products.get(line.product_external_id)
                if product_id is None:
                    product_id = products[line.product_external_id] = new_id()
                    product = {
                        "shop_id": shop_id,
                        "id": product_id,
                        "connection_id": connection_id,
                        "external_id": line.product_external_id,
                        "sku": line.sku,
                        "title": line.title[:500],
                        "price": line.unit_price,
                        "currency": "JPY",
                    }
                    rows["product"].append(_row("product", product))
            stored_line = {
                "shop_id": shop_id,
                "id": new_id(),
                "order_id": order_id,
                "position": position,
                "product_id": product_id,
                "sku": line.sku,
                "title": line.title[:500],
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "amount": line.amount,
            }
            rows["order_line"].append(_row("order_line", stored_line))
    return rows


def columns_of(table: str) -> tuple[str, ...]:
    """The table's columns, in the order of the rows `baseline_rows` makes."""
    return _COLUMNS[table]


def _row(table: str, values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[column] for column in _COLUMNS[table])
