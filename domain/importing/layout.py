"""The files of the import format and their columns (docs/import-format.md is the prose)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FileSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


CUSTOMERS = FileSpec(
    "customers.csv",
    required=("mall", "customer_id"),
    optional=("name", "email", "phone", "birth_date", "created_at", "updated_at"),
)
ORDERS = FileSpec(
    "orders.csv",
    required=("mall", "order_id", "customer_id", "ordered_at", "total_amount"),
    optional=(
        "currency",
        "status",
        "quantity",
        "refunded_amount",
        "subscription_id",
        "updated_at",
    ),
)
ORDER_LINES = FileSpec(
    "order_lines.csv",
    required=("mall", "order_id", "quantity"),
    optional=("line", "product_id", "sku", "title", "unit_price", "amount"),
)
SUBSCRIPTIONS = FileSpec(
    "subscriptions.csv",
    required=("mall", "subscription_id", "customer_id", "started_at"),
    optional=(
        "status",
        "interval_days",
        "product",
        "cancelled_at",
        "next_delivery_at",
        "updated_at",
    ),
)
SUBSCRIPTION_EVENTS = FileSpec(
    "subscription_events.csv",
    required=("mall", "subscription_id", "kind", "occurred_at"),
    optional=("event_id", "reason"),
)

# In the order they are read: lines are staged before their orders, events after their
# subscriptions.
FILES = (CUSTOMERS, ORDER_LINES, ORDERS, SUBSCRIPTIONS, SUBSCRIPTION_EVENTS)
REQUIRED_FILES = frozenset({ORDERS.name})
