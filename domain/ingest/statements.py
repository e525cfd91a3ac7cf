"""Set-based statements that behave the same on SQLite and PostgreSQL.

Rows go in as one executemany per statement (SQLAlchemy packs them into multi-row VALUES within
each driver's parameter limit); key lists are cut into chunks well under SQLite's 32,766 and
asyncpg's 32,767 bound parameters.
"""

import json
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import JSON, ColumnElement, Row, Select, Table, any_, bindparam, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlmodel import SQLModel

from domain.db import AsyncSession

T = TypeVar("T")

# Keys per `IN (…)` list: far below every driver's limit, large enough to keep round trips few.
KEY_CHUNK = 5_000

Values = Mapping[str, Any]


def table_of(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def chunked(items: Sequence[T], size: int = KEY_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dialect_name(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def one_of(
    session: AsyncSession, column: ColumnElement[Any], keys: Sequence[Any]
) -> ColumnElement[bool]:
    """`column IN (keys)`; on PostgreSQL one array parameter (`= ANY`), not one per key."""
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam(None, list(keys), type_=postgresql.ARRAY(column.type)))
    return column.in_(keys)


def _insert(session: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_or_ignore(session: AsyncSession, table: Table, keys: Sequence[str]) -> Insert:
    """INSERT … ON CONFLICT (keys) DO NOTHING."""
    return _insert(session, table).on_conflict_do_nothing(index_elements=list(keys))


def guarded_upsert(
    session: AsyncSession,
    table: Table,
    *,
    keys: Sequence[str],
    update: Sequence[str],
    guard: str | None = None,
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE of `update`.

    With `guard` (a timestamp column) a stored row changes only when its guard is NULL or not
    newer than the incoming one, so a late, older delivery never overwrites a newer one.
    """
    stmt = _insert(session, table)
    where: ColumnElement[bool] | None = None
    if guard is not None:
        stored = table.c[guard]
        where = or_(stored.is_(None), stmt.excluded[guard] >= stored)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: stmt.excluded[name] for name in update},
        where=where,
    )


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[Values]) -> None:
    """Insert new rows: binary COPY on PostgreSQL (an order of magnitude faster than VALUES
    lists for bulk loads), executemany elsewhere. Rows carry every column of the table."""
    if not rows:
        return
    if dialect_name(session) != "postgresql":
        await session.exec(table.insert(), params=list(rows))
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    columns = [column.name for column in table.columns]
    json_columns = {column.name for column in table.columns if isinstance(column.type, JSON)}
    if json_columns:
        records = [
            tuple(json.dumps(row[c]) if c in json_columns else row[c] for c in columns)
            for row in rows
        ]
    else:
        values = itemgetter(*columns)
        records = [values(row) for row in rows]
    driver = raw.driver_connection
    assert driver is not None
    # The foreign-key checks of every copied row run cached SPI plans: under the transaction's
    # `force_custom_plan` (see `ingest_batch`) each check would be planned anew, which more
    # than doubles the cost of a COPY. The plan mode is `auto` for the COPY alone.
    mode = await driver.fetchval("SELECT current_setting('plan_cache_mode')")
    if mode != "auto":
        await driver.execute("SET LOCAL plan_cache_mode = auto")
    # The session's own connection, so the COPY is part of the unit of work's transaction.
    await driver.copy_records_to_table(table.name, records=records, columns=columns)
    if mode != "auto":
        await driver.fetchval("SELECT set_config('plan_cache_mode', $1, true)", mode)


async def execute_many(session: AsyncSession, statement: Insert, rows: Sequence[Values]) -> None:
    """Run one statement over many rows; nothing happens for no rows."""
    if rows:
        await session.exec(statement, params=list(rows))


async def returning_many(
    session: AsyncSession, statement: Insert, rows: Sequence[Values]
) -> list[Any]:
    """Run a statement that has `.returning(one column)` over many rows; the returned values."""
    if not rows:
        return []
    result = await session.exec(statement, params=list(rows))
    return list(result.scalars())


async def fetch_all(
    session: AsyncSession, statement: Select[*tuple[Any, ...]]
) -> Sequence[Row[*tuple[Any, ...]]]:
    """Rows of a Core select on the session's connection: plain tuples, no ORM identity map."""
    connection = await session.connection()
    return (await connection.execute(statement)).all()
