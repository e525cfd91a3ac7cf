"""Hand-made shops for the risk service's tests: every edge case, in the database."""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from domain.connection.models import Connection
from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.jobs import Job, JobArg
from domain.order.models import Order, OrderStatus
from domain.risk.models import RiskScore, RiskScoreHistory
from domain.shop.models import Shop
from tests.factories.customer import make_connection, make_customer
from tests.factories.shop import make_shop

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
LONG_AGO = datetime(2023, 1, 1, tzinfo=UTC)


@dataclass
class RecordingJobs:
    """A `Jobs` that keeps what it was asked to enqueue."""

    enqueued: list[tuple[Job, str | None, dict[str, JobArg]]] = field(default_factory=list)

    def enqueue(self, job: Job, *, _job_id: str | None = None, **kwargs: JobArg) -> None:
        self.enqueued.append((job, _job_id, kwargs))

    def events(self) -> list[dict[str, Any]]:
        """The data of every `risk.changed` event asked for."""
        return [
            json.loads(str(kwargs["data_json"]))
            for job, _, kwargs in self.enqueued
            if job is Job.PUBLISH_EVENT and kwargs["topic"] == "risk.changed"
        ]


@dataclass(frozen=True, slots=True)
class EdgeShop:
    shop: Shop
    connection: Connection
    customers: dict[str, Customer]

    def id_of(self, name: str) -> uuid.UUID:
        return self.customers[name].id


async def add_customer(
    session: AsyncSession, shop: Shop, connection: Connection, name: str
) -> Customer:
    customer = await make_customer(
        session, shop=shop, connection=connection, name=name, external_id=f"ext-{name}"
    )
    customer.created_at = LONG_AGO
    await session.flush()
    return customer


async def add_order(
    session: AsyncSession,
    customer: Customer,
    connection: Connection,
    *,
    at: datetime,
    amount: int = 3000,
    quantity: int = 1,
    status: OrderStatus = OrderStatus.FULFILLED,
    refunded: int = 0,
) -> Order:
    order = new_order(
        customer,
        connection,
        at=at,
        amount=amount,
        quantity=quantity,
        status=status,
        refunded=refunded,
    )
    session.add(order)
    await session.flush()
    return order


def new_order(
    customer: Customer,
    connection: Connection,
    *,
    at: datetime,
    amount: int = 3000,
    quantity: int = 1,
    status: OrderStatus = OrderStatus.FULFILLED,
    refunded: int = 0,
) -> Order:
    """An order not yet added to any session."""
    return Order(
        shop_id=customer.shop_id,
        connection_id=connection.id,
        customer_id=customer.id,
        external_id=f"order-{uuid.uuid4().hex[:12]}",
        ordered_at=at,
        status=status,
        total_amount=amount,
        refunded_amount=refunded,
        item_quantity=quantity,
    )


async def edge_case_shop(session: AsyncSession, *, regulars: int = 12) -> EdgeShop:
    """Customers with no orders, one order, same-day orders, refunds, zero amounts, only
    cancelled orders, plus `regulars` monthly buyers; all history before `AS_OF`."""
    shop = await make_shop(session)
    connection = await make_connection(session, shop=shop)
    names = ["none", "one", "same_day", "refunded", "zero", "cancelled"]
    names += [f"regular{n}" for n in range(regulars)]
    customers = {name: await add_customer(session, shop, connection, name) for name in names}
    day = timedelta(days=1)
    await add_order(session, customers["one"], connection, at=AS_OF - 40 * day)
    for hour in (1, 5):
        at = AS_OF - 20 * day + timedelta(hours=hour)
        await add_order(session, customers["same_day"], connection, at=at)
    await add_order(
        session,
        customers["refunded"],
        connection,
        at=AS_OF - 90 * day,
        status=OrderStatus.REFUNDED,
        refunded=3000,
    )
    await add_order(session, customers["refunded"], connection, at=AS_OF - 30 * day, refunded=1000)
    for days in (60, 10):
        await add_order(session, customers["zero"], connection, at=AS_OF - days * day, amount=0)
    for days in (50, 5):
        await add_order(
            session,
            customers["cancelled"],
            connection,
            at=AS_OF - days * day,
            status=OrderStatus.CANCELLED,
        )
    for n in range(regulars):
        for month in range(12):
            at = AS_OF - (365 - 30 * month + n) * day
            await add_order(session, customers[f"regular{n}"], connection, at=at, quantity=2)
    return EdgeShop(shop, connection, customers)


async def current_scores(session: AsyncSession, shop: Shop) -> dict[uuid.UUID, RiskScore]:
    statement = (
        select(RiskScore)
        .where(RiskScore.shop_id == shop.id)
        .execution_options(populate_existing=True)
    )
    rows = await session.exec(statement)
    return {row.customer_id: row for row in rows.all()}


async def stored_now(session: AsyncSession, shop: Shop) -> dict[uuid.UUID, tuple[Any, ...]]:
    """The shop's current scores as plain values (ORM objects change under later reads)."""
    scores = await current_scores(session, shop)
    return {key: (*comparable(score), score.shown_signs) for key, score in scores.items()}


async def history_rows(session: AsyncSession, shop: Shop) -> list[RiskScoreHistory]:
    statement = (
        select(RiskScoreHistory)
        .where(RiskScoreHistory.shop_id == shop.id)
        .order_by(col(RiskScoreHistory.customer_id), col(RiskScoreHistory.as_of))
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(statement)).all())


def comparable(score: RiskScore | RiskScoreHistory) -> tuple[Any, ...]:
    """A stored score without what differs between equal runs (ids, computation time)."""
    return (
        score.customer_id,
        score.probability,
        score.expected_purchases,
        score.band,
        json.dumps(score.reasons, sort_keys=True),
        score.as_of,
    )
