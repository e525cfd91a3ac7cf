"""`write_import_files`: the demo shop in the CSV import format, streamed to disk."""

import csv
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from domain.demo.generator import generate_shop
from domain.importing import layout
from domain.platforms import (
    CustomerRecord,
    OrderRecord,
    SubscriptionEventRecord,
    SubscriptionRecord,
)

if TYPE_CHECKING:
    from _csv import Writer

JST = timezone(timedelta(hours=9))


@dataclass(frozen=True, slots=True)
class DemoFileCounts:
    """Data rows written per file."""

    customers: int
    orders: int
    order_lines: int
    subscriptions: int
    subscription_events: int


def _time(value: datetime | None) -> str:
    # Times as a Japanese shop exports them: JST with its offset.
    return value.astimezone(JST).isoformat() if value is not None else ""


def _date(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _customer(mall: str, record: CustomerRecord) -> dict[str, str]:
    return {
        "mall": mall,
        "customer_id": record.external_id,
        "name": record.display_name,
        "email": _text(record.email),
        "phone": _text(record.phone),
        "birth_date": _date(record.birth_date),
        "created_at": _time(record.created_at),
        "updated_at": _time(record.source_updated_at),
    }


def _order(mall: str, record: OrderRecord) -> dict[str, str]:
    return {
        "mall": mall,
        "order_id": record.external_id,
        "customer_id": record.customer_external_id,
        "ordered_at": _time(record.ordered_at),
        "total_amount": str(record.total_amount),
        "currency": record.currency,
        "status": record.status.value,
        "refunded_amount": str(record.refunded_amount),
        "subscription_id": _text(record.subscription_external_id),
        "updated_at": _time(record.source_updated_at),
    }


def _lines(mall: str, record: OrderRecord) -> Iterator[dict[str, str]]:
    for position, line in enumerate(record.lines, start=1):
        yield {
            "mall": mall,
            "order_id": record.external_id,
            "line": str(position),
            "product_id": _text(line.product_external_id),
            "sku": _text(line.sku),
            "title": line.title,
            "quantity": str(line.quantity),
            "unit_price": _text(line.unit_price),
            "amount": str(line.amount),
        }


def _subscription(mall: str, record: SubscriptionRecord) -> dict[str, str]:
    return {
        "mall": mall,
        "subscription_id": record.external_id,
        "customer_id": record.customer_external_id,
        "started_at": _time(record.started_at),
        "status": record.status.value,
        "interval_days": str(record.interval_days),
        "product": record.product_title,
        "cancelled_at": _time(record.cancelled_at),
        "next_delivery_at": _time(record.next_delivery_at),
        "updated_at": _time(record.source_updated_at),
    }


def _event(mall: str, record: SubscriptionEventRecord) -> dict[str, str]:
    return {
        "mall": mall,
        "subscription_id": record.subscription_external_id,
        "kind": record.kind.value,
        "occurred_at": _time(record.occurred_at),
        "event_id": _text(record.event_id),
        "reason": _text(record.reason),
    }


class _Files:
    """One CSV writer per file of the format, and the rows each got."""

    def __init__(self, stack: ExitStack, directory: Path) -> None:
        self._writers: dict[str, tuple[Writer, tuple[str, ...]]] = {}
        self.rows: dict[str, int] = {}
        for spec in FILES:
            # Every column of the format but orders' `quantity`: the lines carry quantities.
            columns = tuple(c for c in spec.columns if (spec, c) != (layout.ORDERS, "quantity"))
            handle = stack.enter_context(
                (directory / spec.name).open("w", encoding="utf-8", newline="")
            )
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            self._writers[spec.name] = (writer, columns)
            self.rows[spec.name] = 0

    def write(self, spec: layout.FileSpec, rows: Iterable[dict[str, str]]) -> None:
        writer, columns = self._writers[spec.name]
        for row in rows:
            writer.writerow([row[column] for column in columns])
            self.rows[spec.name] += 1


FILES = (
    layout.CUSTOMERS,
    layout.ORDERS,
    layout.ORDER_LINES,
    layout.SUBSCRIPTIONS,
    layout.SUBSCRIPTION_EVENTS,
)


def write_import_files(
    directory: Path, seed: int, *, customers: int, as_of: datetime
) -> DemoFileCounts:
    """Write the five import files of the demo shop into `directory` (created if needed).

    The same arguments write the same bytes; memory stays flat whatever `customers` is.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        files = _Files(stack, directory)
        for batch in generate_shop(seed, customers=customers, as_of=as_of):
            mall, records = batch.platform.value, batch.records
            files.write(layout.CUSTOMERS, (_customer(mall, r) for r in records.customers))
            files.write(layout.ORDERS, (_order(mall, r) for r in records.orders))
            files.write(
                layout.ORDER_LINES, (row for r in records.orders for row in _lines(mall, r))
            )
            files.write(
                layout.SUBSCRIPTIONS, (_subscription(mall, r) for r in records.subscriptions)
            )
            files.write(
                layout.SUBSCRIPTION_EVENTS, (_event(mall, r) for r in records.subscription_events)
            )
    rows = files.rows
    return DemoFileCounts(
        customers=rows[layout.CUSTOMERS.name],
        orders=rows[layout.ORDERS.name],
        order_lines=rows[layout.ORDER_LINES.name],
        subscriptions=rows[layout.SUBSCRIPTIONS.name],
        subscription_events=rows[layout.SUBSCRIPTION_EVENTS.name],
    )
