"""One import run: reads the files in dependency order, checks rows, ingests them in chunks."""

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select

from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.importing import layout, rows
from domain.importing.parsing import Parser, parse_chunks, read_ahead
from domain.importing.reader import CsvSource, SourceRow
from domain.importing.rejections import Rejections
from domain.importing.rows import Parsed, StagedLine
from domain.importing.staging import Staging
from domain.ingest import Counts, IngestResult, get_or_create_import_connection, ingest_batch
from domain.ingest.statements import chunked, fetch_all, one_of, table_of
from domain.platforms import OrderRecord, RecordBatch, SubscriptionEventRecord
from domain.subscription.models import Subscription

R = TypeVar("R")
Chunk = list[tuple[SourceRow, Parsed[R]]]

# Files whose rejected rows others refer to: their keys are kept so that a line or an event
# can say its order or subscription was rejected rather than unknown.
_REFERENCED_KEYS = {layout.ORDERS.name: "order_id", layout.SUBSCRIPTIONS.name: "subscription_id"}


@dataclass(slots=True)
class Tally:
    customers: Counts = field(default_factory=Counts)
    orders: Counts = field(default_factory=Counts)
    order_lines: int = 0
    subscriptions: Counts = field(default_factory=Counts)
    subscription_events: Counts = field(default_factory=Counts)
    rows_read: int = 0


class ImportRun:
    """The state of one import inside its session: staging tables, connections, tallies."""

    def __init__(
        self,
        session: AsyncSession,
        shop_id: ShopId,
        zone: ZoneInfo,
        sources: dict[str, tuple[CsvSource, list[str]]],
        rejections: Rejections,
        *,
        skip_invalid: bool,
        batch_size: int,
    ) -> None:
        self._session = session
        self._shop_id = shop_id
        self._zone = zone
        self._sources = sources
        self._rejections = rejections
        self._skip_invalid = skip_invalid
        self._batch_size = batch_size
        self._staging = Staging(session)
        self._connections: dict[str, ConnectionId] = {}
        self._rejected_keys: list[tuple[str, str, int]] = []
        self.tally = Tally()

    @property
    def _writing(self) -> bool:
        # Without skip_invalid one bad row dooms the import: keep checking, stop writing.
        return self._skip_invalid or self._rejections.total == 0

    async def execute(self) -> None:
        await self._staging.create()
        await self._customers()
        await self._order_lines()
        await self._orders()
        await self._subscriptions()
        await self._subscription_events()
        await self._staging.drop()

    async def _connection(self, mall: str) -> ConnectionId:
        if mall not in self._connections:
            connection = await get_or_create_import_connection(self._session, self._shop_id, mall)
            self._connections[mall] = ConnectionId(connection.id)
        return self._connections[mall]

    async def _read(self, spec: layout.FileSpec, parse: Parser[R]) -> AsyncIterator[Chunk[R]]:
        """Valid rows of a file in chunks; invalid ones are rejected on the way."""
        if spec.name not in self._sources:
            return
        source, header = self._sources[spec.name]
        chunks = parse_chunks(source, header, self._zone, parse, self._batch_size)
        async for chunk in read_ahead(chunks):
            self.tally.rows_read += len(chunk.valid) + len(chunk.rejected)
            for row, problems in chunk.rejected:
                self._reject(spec, row, problems)
            if chunk.valid:
                yield chunk.valid

    def _reject(
        self, spec: layout.FileSpec, row: SourceRow, problems: Sequence[tuple[str, str]]
    ) -> None:
        header = self._sources[spec.name][1]
        self._rejections.reject(spec.name, row.line, header, row.values, problems)
        column = _REFERENCED_KEYS.get(spec.name)
        if column is not None and len(row.values) == len(header):
            cells = dict(zip(header, row.values, strict=True))
            mall, key = cells["mall"].strip().lower(), cells[column].strip()
            if mall and key:
                self._rejected_keys.append((mall, key, row.line))

    async def _remember_rejected_keys(self, spec: layout.FileSpec) -> None:
        await self._staging.remember(f"{spec.name}#rejected", self._rejected_keys)
        self._rejected_keys = []

    async def _unique(
        self,
        spec: layout.FileSpec,
        chunk: Chunk[R],
        column: str,
        describe: Callable[[Parsed[R]], str],
    ) -> Chunk[R]:
        """The chunk without rows whose key an earlier row of the file already had."""
        duplicates = await self._staging.claim(
            spec.name, [(parsed.mall, parsed.key, parsed.line) for _, parsed in chunk]
        )
        kept: Chunk[R] = []
        for row, parsed in chunk:
            first = duplicates.get(parsed.line)
            if first is None:
                kept.append((row, parsed))
            else:
                message = f"duplicate {describe(parsed)} (first on line {first})"
                self._reject(spec, row, [(column, message)])
        return kept

    async def _ingest(
        self,
        chunk: Chunk[R],
        build: Callable[[tuple[R, ...]], RecordBatch],
        *,
        with_lines: bool = True,
    ) -> list[IngestResult]:
        """Ingest valid rows per mall; the results, or nothing while the import is doomed."""
        if not self._writing:
            return []
        by_mall: dict[str, list[R]] = defaultdict(list)
        for _, parsed in chunk:
            by_mall[parsed.mall].append(parsed.record)
        results = []
        for mall, records in sorted(by_mall.items()):
            connection_id = await self._connection(mall)
            results.append(
                await ingest_batch(
                    self._session,
                    self._shop_id,
                    connection_id,
                    build(tuple(records)),
                    with_lines=with_lines,
                )
            )
        return results

    async def _customers(self) -> None:
        spec = layout.CUSTOMERS
        async for chunk in self._read(spec, rows.customer):
            valid = await self._unique(spec, chunk, "customer_id", lambda p: f'"{p.key}"')
            for result in await self._ingest(valid, lambda r: RecordBatch(customers=r)):
                self.tally.customers += result.customers

    async def _order_lines(self) -> None:
        spec = layout.ORDER_LINES
        async for chunk in self._read(spec, rows.order_line):
            valid: Chunk[StagedLine] = chunk
            if "line" in self._sources[spec.name][1]:
                valid = await self._unique(
                    spec,
                    chunk,
                    "line",
                    lambda p: f'line {p.record.position} of order "{p.record.order_id}"',
                )
            await self._staging.stage_lines(
                [(parsed.mall, parsed.line, parsed.record) for _, parsed in valid]
            )
            self.tally.order_lines += len(valid)

    async def _orders(self) -> None:
        spec = layout.ORDERS
        with_lines = layout.ORDER_LINES.name in self._sources
        async for chunk in self._read(spec, rows.order):
            valid = await self._unique(spec, chunk, "order_id", lambda p: f'"{p.key}"')
            if with_lines and self._writing:
                valid = await self._attach_lines(valid)
            results = await self._ingest(
                valid, lambda r: RecordBatch(orders=r), with_lines=with_lines
            )
            for result in results:
                self.tally.orders += result.orders
                self.tally.customers += result.customers
            await self._remember_rejected_keys(spec)
        await self._remember_rejected_keys(spec)
        if with_lines:
            await self._reject_orphan_lines()

    async def _attach_lines(self, chunk: Chunk[OrderRecord]) -> Chunk[OrderRecord]:
        by_mall: dict[str, list[str]] = defaultdict(list)
        for _, parsed in chunk:
            by_mall[parsed.mall].append(parsed.key)
        lines = {
            mall: await self._staging.lines_of_orders(mall, keys) for mall, keys in by_mall.items()
        }
        attached: Chunk[OrderRecord] = []
        for row, parsed in chunk:
            record = parsed.record
            # The constructor, not dataclasses.replace: a million orders make the difference.
            with_lines = OrderRecord(
                record.platform,
                record.external_id,
                record.customer_external_id,
                record.ordered_at,
                record.total_amount,
                record.currency,
                record.status,
                record.refunded_amount,
                record.item_quantity,
                lines[parsed.mall].get(parsed.key, ()),
                record.subscription_external_id,
                record.source_updated_at,
            )
            attached.append((row, Parsed(parsed.line, parsed.mall, parsed.key, with_lines)))
        return attached

    async def _reject_orphan_lines(self) -> None:
        spec = layout.ORDER_LINES
        source, header = self._sources[spec.name]
        # Both sides ascend by line: merge them to recover each orphan's original cells.
        rows_iter = iter(source.rows())
        after = 0
        orders = layout.ORDERS.name
        while orphans := await self._staging.orphan_lines(
            orders, f"{orders}#rejected", after, self._batch_size
        ):
            for line, _, order_id, rejected_on in orphans:
                row = next((row for row in rows_iter if row.line == line), None)
                values = row.values if row is not None else []
                if rejected_on is None:
                    message = f'unknown order "{order_id}" (no valid row in {orders})'
                else:
                    message = f'order "{order_id}" is rejected ({orders}:{rejected_on})'
                self._rejections.reject(spec.name, line, header, values, [("order_id", message)])
            after = orphans[-1][0]

    async def _subscriptions(self) -> None:
        spec = layout.SUBSCRIPTIONS
        async for chunk in self._read(spec, rows.subscription):
            valid = await self._unique(spec, chunk, "subscription_id", lambda p: f'"{p.key}"')
            for result in await self._ingest(valid, lambda r: RecordBatch(subscriptions=r)):
                self.tally.subscriptions += result.subscriptions
                self.tally.customers += result.customers
            await self._remember_rejected_keys(spec)
        await self._remember_rejected_keys(spec)

    async def _subscription_events(self) -> None:
        spec = layout.SUBSCRIPTION_EVENTS

        def describe(parsed: Parsed[SubscriptionEventRecord]) -> str:
            record = parsed.record
            return f'event "{record.dedup_key}" of subscription "{record.subscription_external_id}"'

        async for chunk in self._read(spec, rows.subscription_event):
            valid = await self._unique(spec, chunk, "event_id", describe)
            valid = await self._known_subscriptions(valid)
            results = await self._ingest(valid, lambda r: RecordBatch(subscription_events=r))
            for result in results:
                self.tally.subscription_events += result.subscription_events

    async def _known_subscriptions(
        self, chunk: Chunk[SubscriptionEventRecord]
    ) -> Chunk[SubscriptionEventRecord]:
        wanted: dict[str, set[str]] = defaultdict(set)
        for _, parsed in chunk:
            wanted[parsed.mall].add(parsed.record.subscription_external_id)
        known: dict[str, set[str]] = {}
        table = table_of(Subscription).c
        for mall, keys in wanted.items():
            ordered = sorted(keys)
            known[mall] = await self._staging.known(layout.SUBSCRIPTIONS.name, mall, ordered)
            connection_id = await self._connection(mall)
            for part in chunked(ordered):
                statement = select(table.external_id).where(
                    table.shop_id == self._shop_id,
                    table.connection_id == connection_id,
                    one_of(self._session, table.external_id, part),
                )
                known[mall].update(key for (key,) in await fetch_all(self._session, statement))
        missing = [
            (parsed.mall, parsed.record.subscription_external_id)
            for _, parsed in chunk
            if parsed.record.subscription_external_id not in known[parsed.mall]
        ]
        source = layout.SUBSCRIPTIONS.name
        rejected = await self._staging.first_lines(f"{source}#rejected", missing)
        kept: Chunk[SubscriptionEventRecord] = []
        for row, parsed in chunk:
            subscription_id = parsed.record.subscription_external_id
            if subscription_id in known[parsed.mall]:
                kept.append((row, parsed))
                continue
            rejected_on = rejected.get((parsed.mall, subscription_id))
            if rejected_on is None:
                message = f'unknown subscription "{subscription_id}"'
            else:
                message = f'subscription "{subscription_id}" is rejected ({source}:{rejected_on})'
            self._reject(layout.SUBSCRIPTION_EVENTS, row, [("subscription_id", message)])
        return kept
