"""Reads of a shop's mall connections, without their credentials.

`ConnectionRow` has no credentials field at all, so no caller can leak them by accident.
"""

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, Table, func, select

from domain.connection.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from domain.customer.models import CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import table_of
from domain.order.models import Order
from domain.queries import SHOP_ID, among, dialect_of, rows, shop_of
from domain.subscription.models import Subscription

CONNECTION_TABLE: Table = Connection.__table__  # type: ignore[attr-defined]
CONNECTION = CONNECTION_TABLE.c
SYNC_RUN = SyncRun.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    id: uuid.UUID
    platform: str
    name: str
    status: ConnectionStatus
    last_sync_at: datetime | None
    last_error: str | None
    created_at: datetime
    external_account_id: str
    base_url: str | None
    # Where the next incremental sync starts; opaque to all but the platform that made it.
    cursors: Mapping[str, str]
    backfilled_at: datetime | None
    # Share of the history the backfill has read (0 to 1); 1 once backfilled, None unknown.
    backfill_progress: float | None


@dataclass(frozen=True, slots=True)
class ConnectionCounts:
    """Rows that came through one connection."""

    orders: int
    customers: int
    subscriptions: int


@dataclass(frozen=True, slots=True)
class SyncRunRow:
    id: uuid.UUID
    kind: str
    since: datetime | None
    status: SyncStatus
    started_at: datetime
    finished_at: datetime | None
    counts: Mapping[str, int]
    errors: Sequence[str]
    backfill_progress: float | None


_COLUMNS = [CONNECTION[f.name] for f in fields(ConnectionRow)]


def _connection(row: Sequence[Any]) -> ConnectionRow:
    values = list(row)
    values[3] = ConnectionStatus(values[3])
    values[9] = {str(k): str(v) for k, v in (values[9] or {}).items()}
    return ConnectionRow(*values)


_LIST = (
    select(*_COLUMNS)
    .where(shop_of(CONNECTION.shop_id))
    .order_by(CONNECTION.created_at, CONNECTION.id)
)


@cache
def _connections_among(dialect: str) -> Select[Any]:
    return select(*_COLUMNS).where(
        shop_of(CONNECTION.shop_id), among(CONNECTION.id, "ids", dialect)
    )


async def list_connections(session: AsyncSession, shop_id: ShopId) -> list[ConnectionRow]:
    """The shop's connections, oldest first."""
    return [_connection(row) for row in await rows(session, _LIST, {SHOP_ID: shop_id})]


async def get_connections(
    session: AsyncSession, shop_id: ShopId, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, ConnectionRow]:
    """The shop's connections among `ids`; IDs of other shops are simply absent."""
    if not ids:
        return {}
    statement = _connections_among(dialect_of(session))
    found = await rows(session, statement, {SHOP_ID: shop_id, "ids": list(ids)})
    return {row.id: row for row in map(_connection, found)}


async def count_connection_rows(
    session: AsyncSession, shop_id: ShopId, connection_id: uuid.UUID
) -> ConnectionCounts:
    """Orders, customers (identities) and subscriptions stored for one connection."""
    totals: list[int] = []
    for model in (Order, CustomerIdentity, Subscription):
        table = table_of(model)
        statement = select(func.count()).where(
            table.c.shop_id == shop_id, table.c.connection_id == connection_id
        )
        totals.append(int((await rows(session, statement))[0][0]))
    return ConnectionCounts(*totals)


async def list_sync_runs(
    session: AsyncSession, shop_id: ShopId, connection_id: uuid.UUID, *, limit: int = 10
) -> list[SyncRunRow]:
    """The connection's latest sync runs, newest first."""
    statement = (
        select(
            SYNC_RUN.id,
            SYNC_RUN.kind,
            SYNC_RUN.since,
            SYNC_RUN.status,
            SYNC_RUN.started_at,
            SYNC_RUN.finished_at,
            SYNC_RUN.counts,
            SYNC_RUN.errors,
            SYNC_RUN.backfill_progress,
        )
        .where(SYNC_RUN.shop_id == shop_id, SYNC_RUN.connection_id == connection_id)
        .order_by(SYNC_RUN.started_at.desc(), SYNC_RUN.id.desc())
        .limit(limit)
    )
    return [
        SyncRunRow(
            id=row.id,
            kind=row.kind,
            since=row.since,
            status=SyncStatus(row.status),
            started_at=row.started_at,
            finished_at=row.finished_at,
            counts={str(k): int(v) for k, v in (row.counts or {}).items()},
            errors=[str(error) for error in row.errors or []],
            backfill_progress=row.backfill_progress,
        )
        for row in await rows(session, statement)
    ]


def row_of(connection: Connection) -> ConnectionRow:
    """The read form of a loaded connection (what mutations answer with)."""
    return ConnectionRow(
        id=connection.id,
        platform=connection.platform,
        name=connection.name,
        status=ConnectionStatus(connection.status),
        last_sync_at=connection.last_sync_at,
        last_error=connection.last_error,
        created_at=connection.created_at,
        external_account_id=connection.external_account_id,
        base_url=connection.base_url,
        cursors={str(k): str(v) for k, v in (connection.cursors or {}).items()},
        backfilled_at=connection.backfilled_at,
        backfill_progress=connection.backfill_progress,
    )
