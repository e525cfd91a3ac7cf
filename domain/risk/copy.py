"""Bulk reads for the risk model: a query's rows as numpy columns, on either backend.

On PostgreSQL the query runs as `COPY (…) TO STDOUT (FORMAT binary)` on the session's own
connection (so inside its transaction) and the stream is parsed in bulk: every column has a
fixed width and none may be NULL, so each row is a fixed-width record. On SQLite the rows are
fetched and converted; shops there are small.
"""

import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Executable, Select

from domain.db import AsyncSession
from domain.ingest.statements import dialect_name

Records = NDArray[np.void]
# A query's result, column by column.
Columns = dict[str, NDArray[Any]]

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
# Bytes parsed per step: bounds the raw buffer while ten million rows stream in.
_STEP_BYTES = 32 << 20


class Kind(StrEnum):
    """Column kinds a bulk read understands, with their binary and numpy forms."""

    UUID = "uuid"
    BOOL = "bool"
    INT2 = "int2"
    INT4 = "int4"
    INT8 = "int8"
    FLOAT8 = "float8"
    TIMESTAMP = "timestamp"  # read as float64 UTC epoch seconds


_WIRE = {
    Kind.UUID: "V16",
    Kind.BOOL: "?",
    Kind.INT2: ">i2",
    Kind.INT4: ">i4",
    Kind.INT8: ">i8",
    Kind.FLOAT8: ">f8",
    Kind.TIMESTAMP: ">i8",
}
_NATIVE = {
    Kind.UUID: "V16",
    Kind.BOOL: "?",
    Kind.INT2: "<i2",
    Kind.INT4: "<i4",
    Kind.INT8: "<i8",
    Kind.FLOAT8: "<f8",
    Kind.TIMESTAMP: "<f8",
}

Layout = Sequence[tuple[str, Kind]]


async def read_columns(
    session: AsyncSession, query: Select[Any], layout: Layout, *, bulk: bool = True
) -> Columns:
    """Every row of `query` as columns named and typed by `layout`.

    Columns must come out in `layout`'s order, never NULL and, on PostgreSQL, of exactly the
    kind named (cast in the query where needed). `bulk=False` for a few rows: a plain query,
    one round trip, where COPY would cost more than it saves.
    """
    if bulk and dialect_name(session) == "postgresql":
        return await _copy_out(session, query, layout)
    rows = (await (await session.connection()).execute(query)).all()
    result: Columns = {}
    for position, (name, kind) in enumerate(layout):
        values = [row[position] for row in rows]
        if kind is Kind.UUID:
            result[name] = np.array([v.bytes for v in values], dtype="S16").view("V16")
        elif kind is Kind.TIMESTAMP:
            result[name] = np.array([v.timestamp() for v in values], dtype=np.float64)
        else:
            result[name] = np.array(values, dtype=_NATIVE[kind])
    return result


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's own (so inside its transaction)."""
    raw = (await (await session.connection()).get_raw_connection()).driver_connection
    if raw is None:
        raise RuntimeError("the session's connection is closed")
    return raw


async def execute(session: AsyncSession, statement: Executable) -> None:
    """Run a statement that returns no rows (DDL, `text`) in the session's transaction."""
    await (await session.connection()).execute(statement)


async def _copy_out(session: AsyncSession, query: Select[Any], layout: Layout) -> Columns:
    compiled = query.compile(dialect=session.get_bind().dialect)
    arguments = [compiled.params[name] for name in compiled.positiontup or ()]
    raw = await driver_connection(session)
    parser = _Parser(layout)
    await raw.copy_from_query(str(compiled), *arguments, output=parser.feed, format="binary")
    return parser.finish()


class _Parser:
    """Binary COPY stream → columns, a bounded step at a time."""

    def __init__(self, layout: Layout) -> None:
        fields: list[tuple[str, str]] = [("count", ">i2")]
        for name, kind in layout:
            fields += [(f"{name}_size", ">i4"), (name, _WIRE[kind])]
        self.layout = layout
        self.wire = np.dtype(fields)
        self.chunks: list[bytes] = []
        self.pending = 0
        self.header_done = False
        self.parts: dict[str, list[NDArray[Any]]] = {name: [] for name, _ in layout}

    async def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.pending += len(chunk)
        if self.pending >= _STEP_BYTES:
            self._parse()

    def finish(self) -> Columns:
        self._parse()
        if b"".join(self.chunks) != struct.pack(">h", -1):
            raise ValueError("binary COPY stream ended without its trailer")
        return {
            name: np.concatenate(parts) if parts else np.zeros(0, dtype=_NATIVE[kind])
            for (name, kind), parts in zip(self.layout, self.parts.values(), strict=True)
        }

    def _parse(self) -> None:
        data = b"".join(self.chunks)
        start = 0
        if not self.header_done:
            if len(data) < 19:
                return
            if data[:11] != _SIGNATURE:
                raise ValueError("not a binary COPY stream")
            start = 19 + struct.unpack(">i", data[15:19])[0]
            self.header_done = True
        # Whole rows only; a row is wider than the two-byte trailer, which so stays behind.
        rows = (len(data) - start) // self.wire.itemsize
        end = start + rows * self.wire.itemsize
        self.chunks = [data[end:]]
        self.pending = len(data) - end
        if rows == 0:
            return
        wire = np.frombuffer(data, dtype=self.wire, count=rows, offset=start)
        self._check(wire)
        for name, kind in self.layout:
            if kind is Kind.TIMESTAMP:
                self.parts[name].append(wire[name] / 1e6 + _PG_EPOCH)
            else:
                self.parts[name].append(wire[name].astype(_NATIVE[kind]))

    def _check(self, wire: Records) -> None:
        if (wire["count"] != len(self.layout)).any():
            raise ValueError("binary COPY rows do not match the expected columns")
        for name, kind in self.layout:
            width = np.dtype(_WIRE[kind]).itemsize
            if (wire[f"{name}_size"] != width).any():
                raise ValueError(f"column {name!r} is NULL or not {kind.value} in some row")
