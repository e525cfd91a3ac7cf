"""Synthetic shops at scale for bench/recompute.py: numpy-generated rows loaded with binary COPY.

The demo generator builds realistic records one by one through the ingest path; at ten million
orders that takes far longer than the benchmark itself. Here every table is a few numpy columns
written as PostgreSQL's binary COPY format in chunks, so a 1M-customer / 10M-order shop loads in
minutes. Customers buy as Poisson processes with Gamma rates until they leave (exponential
lifetimes); a share have only cancelled orders, none at all, refunds, or a subscription with
skips, pauses and cancellations. The shop is seeded in one transaction and named after its size
and seed, so an existing shop of that name is complete and is reused.
"""

import io
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select

from domain.connection.models import Connection
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.shop.models import Shop
from domain.shop.service import create_shop

AS_OF = datetime(2025, 11, 1, tzinfo=UTC)
HISTORY_DAYS = 730
CHUNK = 500_000
_PG_EPOCH_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)

Field = NDArray[np.generic] | None


def shop_name(customers: int, orders: int, seed: int) -> str:
    return f"Kizuki recompute bench: {customers} customers, {orders} orders, seed {seed}"


def binary_copy(fields: Sequence[Field], rows: int) -> bytes:
    """Rows in PostgreSQL's binary COPY format; `None` fields are NULL in every row.

    Every field is a fixed-width big-endian array (text as `S<k>` of exactly k bytes), so a
    row is a fixed-width record and the whole payload is one structured numpy array.
    """
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for index, field in enumerate(fields):
        layout.append((f"n{index}", ">i4"))
        if field is not None:
            layout.append((f"v{index}", field.dtype.str))
    record = np.zeros(rows, dtype=np.dtype(layout))
    record["count"] = len(fields)
    for index, field in enumerate(fields):
        if field is None:
            record[f"n{index}"] = -1
        else:
            record[f"n{index}"] = field.dtype.itemsize
            record[f"v{index}"] = field
    return record.tobytes()


def uuid7(count: int, rng: np.random.Generator, start: datetime) -> NDArray[np.void]:
    """`count` time-ordered UUIDv7 values as 16-byte records (four per millisecond)."""
    millis = int(start.timestamp() * 1000) + np.arange(count, dtype=np.uint64) // 4
    high = (millis << np.uint64(16)) | np.uint64(0x7000)
    high |= rng.integers(0, 1 << 12, count, dtype=np.uint64)
    low = rng.integers(0, 1 << 62, count, dtype=np.uint64) | np.uint64(1 << 63)
    pair = np.empty((count, 2), dtype=">u8")
    pair[:, 0], pair[:, 1] = high, low
    return pair.view("V16").reshape(count)


def timestamps(epoch_seconds: NDArray[np.float64]) -> NDArray[np.int64]:
    """Binary COPY timestamptz values: microseconds since 2000-01-01 UTC, big-endian."""
    return (np.round(epoch_seconds * 1e6).astype(np.int64) - _PG_EPOCH_US).astype(">i8")


def fixed_text(prefix: str, numbers: NDArray[np.int64], digits: int) -> NDArray[np.bytes_]:
    """`prefix` + zero-padded numbers, all the same byte length."""
    width = len(prefix) + digits
    text = np.char.add(prefix, np.char.zfill(numbers.astype(f"U{digits}"), digits))
    return np.asarray(text, dtype=f"S{width}")


@dataclass(frozen=True, slots=True)
class Orders:
    """One customer index per order, sorted by customer; everything else per order."""

    customer: NDArray[np.int64]
    epoch: NDArray[np.float64]
    status: NDArray[np.int8]  # 0 fulfilled, 1 cancelled, 2 refunded, 3 open
    total: NDArray[np.int64]
    refunded: NDArray[np.int64]
    quantity: NDArray[np.int64]


STATUSES = (b"fulfilled", b"cancelled", b"refunded", b"open")


def generate_orders(customers: int, orders: int, rng: np.random.Generator) -> Orders:
    """Exactly `orders` orders over `customers` customers, about 1 % of whom have none."""
    end = AS_OF.timestamp()
    arrive = rng.uniform(0.0, HISTORY_DAYS - 1, customers)
    span = np.minimum(rng.exponential(400.0, customers), HISTORY_DAYS - arrive - 1e-3)
    weight = rng.gamma(0.8, 1.0, customers) * np.maximum(span, 1.0)
    weight[rng.random(customers) < 0.01] = 0.0  # customers with no orders at all
    buyers = weight > 0
    extra = orders - int(buyers.sum())
    counts = buyers.astype(np.int64)
    counts += rng.multinomial(extra, weight / weight.sum())
    customer = np.repeat(np.arange(customers, dtype=np.int64), counts)
    first = np.zeros(customer.shape[0], dtype=np.bool_)
    first[np.cumsum(counts[buyers]) - counts[buyers]] = True
    offset = np.where(first, 0.0, rng.random(customer.shape[0]) * span[customer])
    day = arrive[customer] + offset
    status = rng.choice(4, customer.shape[0], p=[0.95, 0.03, 0.01, 0.01]).astype(np.int8)
    # 0.5 % of customers cancelled every order they placed.
    cancelled_only = rng.random(customers) < 0.005
    status[cancelled_only[customer]] = 1
    level = rng.lognormal(8.3, 0.5, customers)
    total = np.round(level[customer] * rng.lognormal(0.0, 0.3, customer.shape[0])).astype(np.int64)
    total[rng.random(customer.shape[0]) < 0.002] = 0
    refunded = np.where(status == 2, total, 0)
    partial = (status == 0) & (rng.random(customer.shape[0]) < 0.02)
    refunded[partial] = total[partial] * 3 // 10
    return Orders(
        customer=customer,
        epoch=end - (HISTORY_DAYS - day) * 86400.0,
        status=status,
        total=total,
        refunded=refunded,
        quantity=1 + rng.poisson(0.6, customer.shape[0]).astype(np.int64),
    )


@dataclass(frozen=True, slots=True)
class Subscriptions:
    customer: NDArray[np.int64]  # one per subscription
    started: NDArray[np.float64]
    event_subscription: NDArray[np.int64]
    event_epoch: NDArray[np.float64]
    event_kind: NDArray[np.int64]  # index into KINDS


KINDS = (b"started", b"renewed", b"skipped", b"postponed", b"paused", b"resumed", b"cancelled")


def generate_subscriptions(
    orders: Orders, customers: int, rng: np.random.Generator
) -> Subscriptions:
    """Subscriptions for 5 % of buyers: started at the first order, then monthly events."""
    has = np.bincount(orders.customer, minlength=customers) > 0
    chosen = np.flatnonzero(has & (rng.random(customers) < 0.05))
    first = np.full(customers, np.inf)
    np.minimum.at(first, orders.customer, orders.epoch)
    started = first[chosen]
    months = np.maximum(((AS_OF.timestamp() - started) // (30 * 86400)).astype(np.int64), 0)
    months = np.minimum(months, 12)
    per = 1 + months
    sub = np.repeat(np.arange(chosen.shape[0], dtype=np.int64), per)
    step = np.arange(sub.shape[0]) - np.repeat(np.cumsum(per) - per, per)
    kind = rng.choice([1, 2, 3, 4, 5], sub.shape[0], p=[0.7, 0.12, 0.05, 0.08, 0.05])
    kind = np.where(step == 0, 0, kind)
    cancel = (step == np.repeat(per - 1, per)) & (step > 0) & (rng.random(sub.shape[0]) < 0.3)
    kind = np.where(cancel, 6, kind)
    epoch = started[sub] + step * 30 * 86400.0 + rng.uniform(0, 3600, sub.shape[0])
    return Subscriptions(chosen, started, sub, epoch, kind.astype(np.int64))


def _repeat(value: bytes, rows: int, dtype: str) -> NDArray[np.generic]:
    return np.full(rows, np.frombuffer(value, dtype=dtype)[0], dtype=dtype)


def _uuid(value: uuid.UUID, rows: int) -> NDArray[np.generic]:
    return _repeat(value.bytes, rows, "V16")


async def _copy(raw: Any, table: str, fields: dict[str, Field], rows: int) -> None:
    """COPY `rows` rows in chunks, so the payload of one call stays a few hundred MB at most."""
    for start in range(0, rows, CHUNK):
        stop = min(start + CHUNK, rows)
        part = [None if f is None else f[start:stop] for f in fields.values()]
        payload = _HEADER + binary_copy(part, stop - start) + _TRAILER
        await raw.copy_to_table(
            table, source=io.BytesIO(payload), columns=list(fields), format="binary"
        )


async def copy_shop(
    raw: Any,
    shop_id: ShopId,
    connections: Sequence[tuple[uuid.UUID, bytes]],
    customers: int,
    orders: Orders,
    subs: Subscriptions,
    rng: np.random.Generator,
) -> None:
    """COPY every generated row of the shop through the asyncpg connection `raw`.

    Text columns differ in length between groups of rows (order status, event kind), so each
    group is its own COPY of fixed-width rows.
    """
    conn_of = rng.choice(len(connections), customers, p=[0.6, 0.4][: len(connections)])
    conn_ids = np.array([c.bytes for c, _ in connections], dtype="S16").view("V16")
    platforms = np.array([p for _, p in connections], dtype="S7")
    customer_ids = uuid7(customers, rng, AS_OF)

    def common(rows: int) -> dict[str, Field]:
        now = timestamps(np.array([AS_OF.timestamp()]))[0]
        return {"shop_id": _uuid(shop_id, rows), "created_at": np.full(rows, now, dtype=">i8")}

    valid = (orders.status == 0) | (orders.status == 3)
    first, last = np.full(customers, np.inf), np.full(customers, -np.inf)
    np.minimum.at(first, orders.customer[valid], orders.epoch[valid])
    np.maximum.at(last, orders.customer[valid], orders.epoch[valid])
    count = np.bincount(orders.customer[valid], minlength=customers)
    net = orders.total[valid] - orders.refunded[valid]
    spent = np.bincount(orders.customer[valid], weights=net, minlength=customers)
    for has_orders in (True, False):
        group = (count > 0) == has_orders
        rows = int(group.sum())
        fields = common(rows) | {
            "id": customer_ids[group],
            "display_name": _repeat(b"bench customer", rows, "S14"),
            "marketing_restricted": np.zeros(rows, dtype="?"),
            "first_order_at": timestamps(first[group]) if has_orders else None,
            "last_order_at": timestamps(last[group]) if has_orders else None,
            "order_count": count[group].astype(">i4"),
            "total_spent": spent[group].astype(">i8"),
            "currency": _repeat(b"JPY", rows, "S3"),
        }
        fields["updated_at"] = fields["created_at"]
        await _copy(raw, "customer", fields, rows)
    identities = common(customers) | {
        "id": uuid7(customers, rng, AS_OF),
        "customer_id": customer_ids,
        "connection_id": conn_ids[conn_of],
        "platform": platforms[conn_of],
        "external_id": fixed_text("c", np.arange(customers, dtype=np.int64), 9),
        "email_masked": np.zeros(customers, dtype="?"),
        "merge_evidence": _repeat(b"\x01{}", customers, "S3"),  # jsonb version 1, "{}"
    }
    await _copy(raw, "customer_identity", identities, customers)
    order_ids = uuid7(orders.customer.shape[0], rng, AS_OF)
    numbers = np.arange(orders.customer.shape[0], dtype=np.int64)
    for code, status in enumerate(STATUSES):
        rows_of = np.flatnonzero(orders.status == code)
        rows, cust = rows_of.shape[0], orders.customer[rows_of]
        fields = common(rows) | {
            "id": order_ids[rows_of],
            "connection_id": conn_ids[conn_of[cust]],
            "customer_id": customer_ids[cust],
            "external_id": fixed_text("o", numbers[rows_of], 10),
            "ordered_at": timestamps(orders.epoch[rows_of]),
            "status": _repeat(status, rows, f"S{len(status)}"),
            "currency": _repeat(b"JPY", rows, "S3"),
            "total_amount": orders.total[rows_of].astype(">i8"),
            "refunded_amount": orders.refunded[rows_of].astype(">i8"),
            "item_quantity": orders.quantity[rows_of].astype(">i4"),
        }
        await _copy(raw, "order", fields, rows)
    sub_ids = uuid7(subs.customer.shape[0], rng, AS_OF)
    last_kind = np.zeros(subs.customer.shape[0], dtype=np.int64)
    last_kind[subs.event_subscription] = subs.event_kind  # events are in time order per sub
    last_at = np.zeros(subs.customer.shape[0])
    last_at[subs.event_subscription] = subs.event_epoch
    for cancelled in (False, True):
        rows_of = np.flatnonzero((last_kind == KINDS.index(b"cancelled")) == cancelled)
        rows, cust = rows_of.shape[0], subs.customer[rows_of]
        status = b"cancelled" if cancelled else b"active"
        fields = common(rows) | {
            "id": sub_ids[rows_of],
            "connection_id": conn_ids[conn_of[cust]],
            "customer_id": customer_ids[cust],
            "external_id": fixed_text("s", rows_of.astype(np.int64), 9),
            "status": _repeat(status, rows, f"S{len(status)}"),
            "interval_days": np.full(rows, 30, dtype=">i4"),
            "product_title": _repeat(b"teiki", rows, "S5"),
            "started_at": timestamps(subs.started[rows_of]),
            "cancelled_at": timestamps(last_at[rows_of]) if cancelled else None,
        }
        await _copy(raw, "subscription", fields, rows)
    event_ids = uuid7(subs.event_kind.shape[0], rng, AS_OF)
    for code, kind in enumerate(KINDS):
        rows_of = np.flatnonzero(subs.event_kind == code)
        rows = rows_of.shape[0]
        fields = common(rows) | {
            "id": event_ids[rows_of],
            "subscription_id": sub_ids[subs.event_subscription[rows_of]],
            "dedup_key": fixed_text("e", rows_of.astype(np.int64), 10),
            "kind": _repeat(kind, rows, f"S{len(kind)}"),
            "occurred_at": timestamps(subs.event_epoch[rows_of]),
        }
        del fields["created_at"]  # subscription_event has none
        await _copy(raw, "subscription_event", fields, rows)


async def seed_shop(
    sessions: async_sessionmaker[AsyncSession], *, customers: int, orders: int, seed: int
) -> tuple[ShopId, bool]:
    """The bench shop of this size and seed, and whether it was seeded just now."""
    name = shop_name(customers, orders, seed)
    async with sessions() as session:
        existing = (await session.exec(select(Shop.id).where(Shop.name == name))).first()
        if existing is not None:
            return ShopId(existing), False
        shop = await create_shop(session, name)
        shop_id = ShopId(shop.id)
        connections = [
            Connection(shop_id=shop_id, platform=platform, external_account_id=f"bench-{platform}")
            for platform in ("shopify", "rakuten")
        ]
        session.add_all(connections)
        await session.flush()
        rng = np.random.default_rng(seed)
        generated = generate_orders(customers, orders, rng)
        subscriptions = generate_subscriptions(generated, customers, rng)
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        pairs = [(c.id, c.platform.encode()) for c in connections]
        await copy_shop(raw, shop_id, pairs, customers, generated, subscriptions, rng)
        await session.commit()
    return shop_id, True
