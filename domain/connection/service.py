"""Reads of a shop's mall connections, without their credentials.

`ConnectionRow` has no credentials field at all, so no caller can leak them by accident.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, Table, select

from domain.connection.models import Connection, ConnectionStatus
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.queries import SHOP_ID, among, dialect_of, rows, shop_of

CONNECTION_TABLE: Table = Connection.__table__  # type: ignore[attr-defined]
CONNECTION = CONNECTION_TABLE.c


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    id: uuid.UUID
    platform: str
    name: str
    status: ConnectionStatus
    last_sync_at: datetime | None
    last_error: str | None
    created_at: datetime


_COLUMNS = [CONNECTION[f.name] for f in fields(ConnectionRow)]


def _connection(row: Sequence[Any]) -> ConnectionRow:
    values = list(row)
    values[3] = ConnectionStatus(values[3])
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
