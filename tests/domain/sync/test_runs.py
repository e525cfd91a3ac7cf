from collections.abc import Sequence
from datetime import timedelta

import pytest

from domain.connection.models import Connection, SyncRun
from domain.credentials import CredentialCipher
from domain.db import AsyncSession, utcnow
from domain.ids import ShopId
from domain.platforms import RecordBatch, SyncPage
from domain.sync.runs import finish_sync, merged, start_sync, store_pages
from tests.factories.shop import make_shop
from tests.plugins.memory_mall.testing import SECRET_KEY, add_connection

CIPHER = CredentialCipher(SECRET_KEY)


def page(progress: float | None, position: int = 1) -> SyncPage:
    return SyncPage(RecordBatch(), {"position": str(position)}, progress=progress)


@pytest.mark.parametrize(
    ("reported", "expected"),
    [([0.2, 0.4], 0.4), ([0.2, None], 0.2), ([None, None], None), ([0.5, 0.3, None], 0.3)],
)
def test_merged_pages_carry_the_last_progress_the_mall_estimated(
    reported: Sequence[float | None], expected: float | None
) -> None:
    assert merged([page(value) for value in reported]).progress == expected


async def _sync(
    session: AsyncSession, connection: Connection, reports: Sequence[float | None]
) -> tuple[list[float | None], float | None]:
    """One job storing a page per report, then finishing incomplete (time was up)."""
    now = utcnow()
    shop_id = ShopId(connection.shop_id)
    started = await start_sync(
        session, shop_id, connection.id, since=None, now=now, lease_seconds=60, cipher=CIPHER
    )
    assert started is not None
    lease, seen = started.lease, []
    for index, reported in enumerate(reports):
        now += timedelta(seconds=1)
        stored = await store_pages(
            session, started, lease, [page(reported, index)], now=now, lease_seconds=60
        )
        lease = stored.lease
        seen.append(stored.backfill_progress)
    finished = await finish_sync(session, started, lease, now=now, complete=False)
    return seen, finished.backfill_progress


async def test_backfill_progress_only_rises_across_pages_and_jobs(session: AsyncSession) -> None:
    connection = await add_connection(session, await make_shop(session))

    first = await _sync(session, connection, [None, 0.3, None, 0.2])
    await session.refresh(connection)
    stored = connection.backfill_progress
    second = await _sync(session, connection, [0.1, 0.6])
    await session.refresh(connection)

    assert first == ([None, 0.3, 0.3, 0.3], 0.3)
    assert stored == 0.3
    assert second == ([0.3, 0.6], 0.6)
    assert connection.backfill_progress == 0.6
    assert connection.backfilled_at is None


async def test_the_backfill_ends_complete_and_later_runs_have_no_progress(
    session: AsyncSession,
) -> None:
    connection = await add_connection(session, await make_shop(session))
    now = utcnow()
    shop_id = ShopId(connection.shop_id)

    kinds: list[str] = []
    ends: list[float | None] = []
    for reported in (0.4, 0.9):
        # Each job has a session of its own: this one must see what the previous job wrote.
        await session.refresh(connection)
        started = await start_sync(
            session, shop_id, connection.id, since=None, now=now, lease_seconds=60, cipher=CIPHER
        )
        assert started is not None
        stored = await store_pages(
            session, started, started.lease, [page(reported)], now=now, lease_seconds=60
        )
        ends.append((await finish_sync(session, started, stored.lease, now=now)).backfill_progress)
        kinds.append((await session.get_one(SyncRun, (shop_id, started.run_id))).kind)
    await session.refresh(connection)

    assert kinds == ["backfill", "incremental"]
    assert ends == [1.0, None]
    assert connection.backfilled_at == now
    assert connection.backfill_progress == 1.0
