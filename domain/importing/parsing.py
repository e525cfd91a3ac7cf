"""Rows of a file parsed in chunks, one chunk ahead in a worker thread.

Parsing is pure Python and the database work is mostly waiting: reading the next chunk while
the current one is written keeps both busy. The worker only parses; everything that touches
the import's state happens on the event loop.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from domain.importing.cells import Cells
from domain.importing.reader import CsvSource, SourceRow
from domain.importing.rows import Parsed

R = TypeVar("R")
T = TypeVar("T")
Parser = Callable[[Cells], tuple[str, str, R] | None]


@dataclass(slots=True)
class ParsedChunk(Generic[R]):
    valid: list[tuple[SourceRow, Parsed[R]]] = field(default_factory=list)
    rejected: list[tuple[SourceRow, list[tuple[str, str]]]] = field(default_factory=list)


def parse_chunks(
    source: CsvSource, header: list[str], zone: ZoneInfo, parse: Parser[R], size: int
) -> Iterator[ParsedChunk[R]]:
    """Chunks of `size` rows read, each split into valid rows and rejected ones."""
    chunk: ParsedChunk[R] = ParsedChunk()
    count = 0
    for row in source.rows():
        count += 1
        if len(row.values) != len(header):
            problem = ("row", f"has {len(row.values)} fields, the header has {len(header)}")
            chunk.rejected.append((row, [problem]))
        else:
            cells = Cells(header, row.values, zone)
            try:
                parsed = parse(cells)
            except ValueError as error:
                # A record's own checks, for what the cells could not see.
                cells.problem("row", str(error))
                parsed = None
            if parsed is None:
                chunk.rejected.append((row, cells.problems))
            else:
                chunk.valid.append((row, Parsed(row.line, *parsed)))
        if count == size:
            yield chunk
            chunk, count = ParsedChunk(), 0
    if count:
        yield chunk


async def read_ahead(items: Iterator[T]) -> AsyncIterator[T]:
    """The items of a blocking iterator, the next one produced in a thread meanwhile."""

    def step() -> T | None:
        return next(items, None)

    pending = asyncio.ensure_future(asyncio.to_thread(step))
    try:
        while (item := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(step))
            yield item
    finally:
        # A thread cannot be cancelled: let the step under way finish before closing.
        if not pending.done():
            await asyncio.wait([pending])
        if pending.done() and not pending.cancelled():
            pending.exception()
