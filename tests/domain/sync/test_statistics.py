import pytest

from domain.db import AsyncSession
from domain.sync.statistics import analyze_due, refresh_statistics


@pytest.mark.parametrize(
    ("before", "after", "due"),
    [
        (0, 999, False),
        (0, 1_000, True),
        (999, 1_250, True),
        (1_000, 3_999, False),
        (3_999, 4_000, True),
        (4_000, 15_000, False),
        (15_000, 64_000, True),
        (0, 100_000, True),
        (70_000, 70_250, False),
    ],
)
def test_a_sync_analyzes_each_time_its_rows_grow_fourfold(
    before: int, after: int, due: bool
) -> None:
    assert analyze_due(before, after) is due


async def test_statistics_are_refreshed_inside_a_unit_of_work(
    session: AsyncSession, is_postgres: bool
) -> None:
    await refresh_statistics(session)

    if is_postgres:
        connection = await session.connection()
        # Never-analyzed tables have reltuples -1; ANALYZE sets it, within the transaction.
        analyzed = await connection.exec_driver_sql(
            "SELECT min(reltuples) FROM pg_class"
            " WHERE relname IN ('customer', 'customer_identity', 'order', 'order_line')"
        )
        assert analyzed.scalar_one() >= 0
