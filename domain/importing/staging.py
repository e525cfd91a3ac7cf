"""Temporary tables that keep an import's memory flat: keys seen so far, and staged order lines.

Duplicate keys and cross-file references are checked against these tables, inside the import's
transaction, instead of against in-memory sets of every key of a file.
"""

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.db import AsyncSession
from domain.importing.rows import StagedLine
from domain.ingest.statements import chunked, insert_or_ignore, insert_rows, one_of
from domain.platforms import OrderLineRecord

# Server memory an import's staging may use, allocated only as it fills.
TEMP_BUFFERS = "512MB"

_metadata = MetaData()

KEYS = Table(
    "kizuki_import_key",
    _metadata,
    Column("source", String(32), primary_key=True),
    Column("mall", String(32), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("line", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)

LINES = Table(
    "kizuki_import_line",
    _metadata,
    Column("mall", String(32), primary_key=True),
    Column("order_id", Text, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("position", Integer),
    Column("quantity", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("unit_price", BigInteger),
    Column("sku", Text),
    Column("title", Text, nullable=False),
    Column("product_id", Text),
    prefixes=["TEMPORARY"],
)


class Staging:
    """The import's temporary tables on the session's connection, dropped when it is done."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _connection(self) -> AsyncConnection:
        return await self._session.connection()

    async def create(self) -> None:
        connection = await self._connection()
        if connection.dialect.name == "postgresql":
            await self._grow_temp_buffers(connection)
        for table in (KEYS, LINES):
            # A connection reused after an earlier import (SQLite keeps temporary tables per
            # connection) may still hold them.
            await connection.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
            await connection.run_sync(table.create)

    async def _grow_temp_buffers(self, connection: AsyncConnection) -> None:
        # Temporary tables live in per-session buffers, 8 MB by default: a million keys would
        # page through them on every lookup. The size can only be set before the session's
        # first temporary table; a pooled connection that had one keeps its size.
        savepoint = await connection.begin_nested()
        try:
            await connection.execute(text(f"SET temp_buffers = '{TEMP_BUFFERS}'"))
        except DBAPIError:
            await savepoint.rollback()
        else:
            await savepoint.commit()

    async def drop(self) -> None:
        connection = await self._connection()
        for table in (KEYS, LINES):
            await connection.execute(text(f"DROP TABLE IF EXISTS {table.name}"))

    async def claim(self, source: str, rows: Sequence[tuple[str, str, int]]) -> dict[int, int]:
        """Record (mall, key, line) rows; for each repeated key, its line → the first line."""
        occurrences: dict[tuple[str, str], list[int]] = defaultdict(list)
        for mall, key, line in rows:
            occurrences[(mall, key)].append(line)
        # The tables belong to this session alone: look up, then insert, without a race.
        earlier = await self.first_lines(source, list(occurrences))
        await insert_rows(
            self._session,
            KEYS,
            [
                {"source": source, "mall": mall, "key": key, "line": lines[0]}
                for (mall, key), lines in occurrences.items()
                if (mall, key) not in earlier
            ],
        )
        duplicates: dict[int, int] = {}
        for pair, lines in occurrences.items():
            first = earlier.get(pair, lines[0])
            for line in lines:
                if line != first:
                    duplicates[line] = first
        return duplicates

    async def remember(self, source: str, rows: Sequence[tuple[str, str, int]]) -> None:
        """Record (mall, key, line) rows without checking them (keys of rejected rows)."""
        if rows:
            await self._session.exec(
                insert_or_ignore(self._session, KEYS, ("source", "mall", "key")),
                params=[
                    {"source": source, "mall": mall, "key": key, "line": line}
                    for mall, key, line in rows
                ],
            )

    async def first_lines(
        self, source: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """The line each (mall, key) of `source` was first recorded with, for those recorded."""
        by_mall: dict[str, list[str]] = defaultdict(list)
        for mall, key in pairs:
            by_mall[mall].append(key)
        found: dict[tuple[str, str], int] = {}
        connection = await self._connection()
        for mall, keys in by_mall.items():
            for chunk in chunked(keys):
                statement = select(KEYS.c.key, KEYS.c.line).where(
                    KEYS.c.source == source,
                    KEYS.c.mall == mall,
                    one_of(self._session, KEYS.c.key, chunk),
                )
                for key, line in await connection.execute(statement):
                    found[(mall, key)] = line
        return found

    async def known(self, source: str, mall: str, keys: Sequence[str]) -> set[str]:
        """Which of these keys of `source` were claimed (as valid rows) so far."""
        return {key for (_, key) in await self.first_lines(source, [(mall, key) for key in keys])}

    async def stage_lines(self, rows: Sequence[tuple[str, int, StagedLine]]) -> None:
        """Keep (mall, line, StagedLine) rows until their orders are read."""
        await insert_rows(
            self._session,
            LINES,
            [
                {
                    "mall": mall,
                    "order_id": staged.order_id,
                    "line": line,
                    "position": staged.position,
                    "quantity": staged.record.quantity,
                    "amount": staged.record.amount,
                    "unit_price": staged.record.unit_price,
                    "sku": staged.record.sku,
                    "title": staged.record.title,
                    "product_id": staged.record.product_external_id,
                }
                for mall, line, staged in rows
            ],
        )

    async def lines_of_orders(
        self, mall: str, order_ids: Sequence[str]
    ) -> dict[str, tuple[OrderLineRecord, ...]]:
        """The staged lines of these orders, in line order."""
        lines: dict[str, list[OrderLineRecord]] = defaultdict(list)
        connection = await self._connection()
        columns = LINES.c
        for chunk in chunked(order_ids):
            statement = (
                select(
                    columns.order_id,
                    columns.quantity,
                    columns.amount,
                    columns.unit_price,
                    columns.sku,
                    columns.title,
                    columns.product_id,
                )
                .where(columns.mall == mall, one_of(self._session, columns.order_id, chunk))
                .order_by(columns.order_id, columns.position, columns.line)
            )
            for (
                order_id,
                quantity,
                amount,
                unit_price,
                sku,
                title,
                product_id,
            ) in await connection.execute(statement):
                lines[order_id].append(
                    OrderLineRecord(quantity, amount, unit_price, sku, title, product_id)
                )
        return {order_id: tuple(records) for order_id, records in lines.items()}

    async def orphan_lines(
        self, orders_source: str, rejected_source: str, after: int, limit: int
    ) -> list[tuple[int, str, str, int | None]]:
        """Staged lines after line `after` whose order was not claimed as a valid row.

        Each as (line, mall, order id, line of the rejected order row or None).
        """

        def recorded(source: str) -> Select[tuple[int]]:
            return (
                select(KEYS.c.line)
                .where(
                    KEYS.c.source == source,
                    KEYS.c.mall == LINES.c.mall,
                    KEYS.c.key == LINES.c.order_id,
                )
                .correlate(LINES)
            )

        statement = (
            select(
                LINES.c.line,
                LINES.c.mall,
                LINES.c.order_id,
                recorded(rejected_source).scalar_subquery(),
            )
            .where(LINES.c.line > after, ~recorded(orders_source).exists())
            .order_by(LINES.c.line)
            .limit(limit)
        )
        connection = await self._connection()
        return [tuple(row) for row in await connection.execute(statement)]
