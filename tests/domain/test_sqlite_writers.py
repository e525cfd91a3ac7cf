"""The embedded shape runs jobs beside API requests on one SQLite file: writers must wait."""

import asyncio
from pathlib import Path

from sqlalchemy import text

from domain.db import create_engine


async def test_a_transaction_that_read_first_waits_for_another_writer(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE tally (n INTEGER)"))
    other_started = asyncio.Event()

    async def reads_then_writes() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("SELECT count(*) FROM tally"))
            other_started.set()
            await asyncio.sleep(0.1)
            await connection.execute(text("INSERT INTO tally VALUES (1)"))

    async def writes() -> None:
        await other_started.wait()
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO tally VALUES (2)"))

    try:
        await asyncio.gather(reads_then_writes(), writes())
        async with engine.connect() as connection:
            stored = (await connection.execute(text("SELECT n FROM tally ORDER BY n"))).all()
    finally:
        await engine.dispose()

    assert [row.n for row in stored] == [1, 2]
