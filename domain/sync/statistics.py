"""Planner statistics kept current while a sync grows a shop's tables (PostgreSQL only).

A first backfill can grow the tables a hundredfold within minutes. Statistics taken before
(an ANALYZE of nearly empty tables, or of tables holding only other shops) make the planner
believe the shop has a row or two, and it then answers each page's key lookups by walking
the whole shop: every page costs more than the last. Autovacuum catches up only eventually
(and not at all where it is off), so a sync analyzes the ingest tables itself each time the
rows it inserted grow by `GROWTH` times past `FIRST_ANALYZE_ROWS`: a few ANALYZEs per
backfill, none for an ordinary incremental sync.
"""

from sqlalchemy import text

from domain.db import AsyncSession
from domain.ingest.statements import dialect_name

FIRST_ANALYZE_ROWS = 1_000
GROWTH = 4
_TABLES = 'customer, customer_identity, "order", order_line'


def analyze_due(inserted_before: int, inserted_after: int) -> bool:
    """Whether the rows a sync inserted crossed 1,000 times 4^k (some k >= 0) with the last page."""
    threshold = FIRST_ANALYZE_ROWS
    while threshold <= inserted_after:
        if inserted_before < threshold:
            return True
        threshold *= GROWTH
    return False


async def refresh_statistics(session: AsyncSession) -> None:
    """ANALYZE the tables ingest writes (a sample of each: a fraction of a second)."""
    if dialect_name(session) == "postgresql":
        await session.exec(text(f"ANALYZE {_TABLES}"))  # type: ignore[call-overload]
