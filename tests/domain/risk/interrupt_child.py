"""A full recompute in its own process, for `test_interrupt`: prints a line per slice written.

python -m tests.domain.risk.interrupt_child DATABASE_URL SHOP_ID AS_OF
"""

import asyncio
import sys
import uuid
from datetime import datetime

from domain.db import create_engine, session_factory
from domain.ids import ShopId
from domain.risk import runs, service, writing

# Many small slices, so the parent can kill the run between two of them.
runs.SLICE_CUSTOMERS = 200
_write = writing.ScoreWriter.write


async def _announced(self: writing.ScoreWriter, rows: writing.ScoreRows) -> None:
    await _write(self, rows)
    print("slice written", flush=True)  # noqa: T201
    await asyncio.sleep(0.05)


async def main(url: str, shop_id: str, as_of: str) -> None:
    writing.ScoreWriter.write = _announced  # type: ignore[method-assign]
    engine = create_engine(url, pool_size=1)
    try:
        run = await service.recompute_shop_risk(
            session_factory(engine), ShopId(uuid.UUID(shop_id)), as_of=datetime.fromisoformat(as_of)
        )
    finally:
        await engine.dispose()
    print(f"done {run.customers}", flush=True)  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
