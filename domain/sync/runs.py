"""A sync run's record: started with the lease, one update per stored batch of pages, then
finished.

Each batch's records (one page, or consecutive pages merged), its last cursor and the run's
counts are written in one transaction (by the caller's unit of work), so a sync killed between
batches resumes after the last stored one.

Backfill progress goes with them: the share of the history read (0 to 1) that the mall's
pages estimate, kept on the connection and on the run. It only rises: a run of the backfill
(the first sync and the jobs that continue it, until `backfilled_at`) starts from the
connection's value, a page the mall cannot estimate leaves it, and the backfill's end makes it
1. Runs after the backfill have none.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, or_, update
from sqlmodel import select

from domain.connection.accounts import account_of
from domain.connection.models import (
    Connection,
    ConnectionStatus,
    SyncKind,
    SyncRun,
    SyncStatus,
)
from domain.credentials import CredentialCipher
from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest.statements import table_of
from domain.platforms import PageStats, PlatformAccount, RecordBatch, SyncCursor, SyncPage
from domain.sync.counts import SyncCounts, fetched, seen
from domain.sync.lease import Lease, acquire_lease, release_lease, renew_lease
from domain.sync.records import StoredRecords, store_records

# Errors kept per run; a mall that rejects thousands of records needs no more to be diagnosed.
MAX_RUN_ERRORS = 200


@dataclass(frozen=True, slots=True)
class StartedSync:
    """A sync holding its connection's lease, with all it needs to fetch pages."""

    lease: Lease
    run_id: uuid.UUID
    platform: str
    account: PlatformAccount
    cursor: SyncCursor
    kind: SyncKind
    # Where the backfill stood when this run started; None when the run is not a backfill's.
    backfill_progress: float | None = None


@dataclass(frozen=True, slots=True)
class StoredPage:
    lease: Lease
    page: SyncCounts
    total: SyncCounts
    records: StoredRecords
    # The backfill's progress after these pages; None when the run is not a backfill's.
    backfill_progress: float | None


@dataclass(frozen=True, slots=True)
class FinishedSync:
    """A closed run: its counts, and the backfill's progress (1 once it is complete)."""

    counts: SyncCounts
    backfill_progress: float | None


async def start_sync(
    session: AsyncSession,
    shop_id: ShopId,
    connection_id: uuid.UUID,
    *,
    since: datetime | None,
    now: datetime,
    lease_seconds: int,
    cipher: CredentialCipher,
    reconcile: bool = False,
) -> StartedSync | None:
    """Lease the connection and open a run; None when it is held by another sync or inactive.

    The run is a RECONCILE with `reconcile` (which needs `since`), MANUAL with `since` alone,
    else BACKFILL until `backfilled_at` is set, then INCREMENTAL.
    """
    if reconcile and since is None:
        raise ValueError("a reconciliation re-reads from a given since")
    lease = await acquire_lease(session, shop_id, connection_id, now=now, seconds=lease_seconds)
    if lease is None:
        return None
    connection = (
        await session.exec(
            select(Connection).where(Connection.shop_id == shop_id, Connection.id == connection_id)
        )
    ).one()
    # Runs still RUNNING lost their process (this sync only got the lease after it expired).
    run_table = SyncRun.__table__  # type: ignore[attr-defined]
    await session.exec(
        update(run_table)
        .where(
            run_table.c.shop_id == shop_id,
            run_table.c.connection_id == connection_id,
            run_table.c.status == SyncStatus.RUNNING.value,
        )
        .values(status=SyncStatus.FAILED.value, finished_at=now)
    )
    # A backfill cut short (out of time, failed) is continued from its cursor: still a backfill.
    if reconcile:
        kind = SyncKind.RECONCILE
    elif since is not None:
        kind = SyncKind.MANUAL
    elif connection.backfilled_at is None:
        kind = SyncKind.BACKFILL
    else:
        kind = SyncKind.INCREMENTAL
    progress = connection.backfill_progress if kind is SyncKind.BACKFILL else None
    run = SyncRun(
        shop_id=shop_id,
        connection_id=connection_id,
        kind=kind.value,
        since=since,
        backfill_progress=progress,
    )
    run.started_at = now
    session.add(run)
    await session.flush()
    cursor = {str(k): str(v) for k, v in (connection.cursors or {}).items()}
    account = account_of(connection, cipher)
    return StartedSync(lease, run.id, connection.platform, account, cursor, kind, progress)


async def _run(session: AsyncSession, shop_id: ShopId, run_id: uuid.UUID) -> SyncRun:
    statement = select(SyncRun).where(SyncRun.shop_id == shop_id, SyncRun.id == run_id)
    return (await session.exec(statement)).one()


def _with_errors(run: SyncRun, errors: Sequence[str]) -> None:
    room = MAX_RUN_ERRORS - len(run.errors)
    if errors and room > 0:
        run.errors = [*run.errors, *errors[:room]]


def _rising_column(reported: float) -> ColumnElement[float]:
    """The connection's backfill progress raised to `reported`, never lowered."""
    stored = table_of(Connection).c.backfill_progress
    return case((or_(stored.is_(None), stored < reported), reported), else_=stored)


def merged(pages: Sequence[SyncPage]) -> SyncPage:
    """Consecutive pages as one: their records in order, the last page's cursor, the last
    progress the mall estimated among them, their rejections together and their fetching
    costs summed."""
    if len(pages) == 1:
        return pages[0]
    last = pages[-1]
    progress = next((p.progress for p in reversed(pages) if p.progress is not None), None)
    return SyncPage(
        records=RecordBatch(
            customers=tuple(c for p in pages for c in p.records.customers),
            orders=tuple(o for p in pages for o in p.records.orders),
            subscriptions=tuple(s for p in pages for s in p.records.subscriptions),
            subscription_events=tuple(e for p in pages for e in p.records.subscription_events),
        ),
        cursor=last.cursor,
        rejected=tuple(r for p in pages for r in p.rejected),
        stats=PageStats(
            requests=sum(p.stats.requests for p in pages),
            throttle_waits=sum(p.stats.throttle_waits for p in pages),
            throttle_wait_seconds=sum(p.stats.throttle_wait_seconds for p in pages),
        ),
        progress=progress,
    )


async def store_pages(
    session: AsyncSession,
    started: StartedSync,
    lease: Lease,
    pages: Sequence[SyncPage],
    *,
    now: datetime,
    lease_seconds: int,
) -> StoredPage:
    """Store consecutive pages' records, the last one's cursor, the run's counts and (for a
    backfill) its progress together; renews `lease`. The pages go in as one batch (ingest
    keeps the newest version of a record met twice), so a crash leaves the cursor before all
    of them or after all of them.

    Raises `LeaseLost` (roll back) when the connection is no longer this sync's.
    """
    if not pages:
        raise ValueError("no pages to store")
    page = merged(pages)
    shop_id = started.lease.shop_id
    connection_id = ConnectionId(started.lease.connection_id)
    values: dict[str, object] = {"cursors": dict(page.cursor)}
    reported = None if page.progress is None else min(max(page.progress, 0.0), 1.0)
    if started.kind is SyncKind.BACKFILL and reported is not None:
        values["backfill_progress"] = _rising_column(reported)
    # The lease first: a write, so the transaction holds the connection from its start.
    lease = await renew_lease(session, lease, now=now, seconds=lease_seconds, **values)
    records = await store_records(session, shop_id, connection_id, page.records)
    counts = (
        seen(page.records)
        + fetched(page.stats, len(page.rejected), pages=len(pages))
        + records.counts
    )
    run = await _run(session, shop_id, started.run_id)
    if started.kind is SyncKind.BACKFILL and reported is not None:
        stored = run.backfill_progress
        run.backfill_progress = reported if stored is None else max(stored, reported)
    total = SyncCounts.from_json(run.counts) + counts
    run.counts = total.as_json()
    rejected = [f"{r.kind} {r.external_id or '?'}: {r.problem}" for r in page.rejected]
    _with_errors(run, [*rejected, *records.errors])
    session.add(run)
    await session.flush()
    return StoredPage(lease, counts, total, records, run.backfill_progress)


async def finish_sync(
    session: AsyncSession,
    started: StartedSync,
    lease: Lease,
    *,
    now: datetime,
    error: str | None = None,
    status: ConnectionStatus | None = None,
    complete: bool = True,
) -> FinishedSync:
    """Close the run (SUCCEEDED without `error`) and free the connection; the run's counts
    and backfill progress.

    A complete success sets `last_sync_at`, and `backfilled_at` (with the backfill's progress
    at 1) the first time a sync without `since` completes; an incomplete one (its time was
    up, another job continues from the cursor) sets neither. `status` changes the
    connection's status (NEEDS_CREDENTIALS when revoked).
    """
    run = await _run(session, lease.shop_id, started.run_id)
    run.status = SyncStatus.FAILED if error else SyncStatus.SUCCEEDED
    run.finished_at = now
    if error:
        _with_errors(run, [error])
    session.add(run)
    values: dict[str, object] = {"last_error": error}
    if status is not None:
        values["status"] = status.value
    if error is None and complete:
        values["last_sync_at"] = now
        backfilled_at = (
            await session.exec(
                select(Connection.backfilled_at).where(
                    Connection.shop_id == lease.shop_id, Connection.id == lease.connection_id
                )
            )
        ).one()
        if backfilled_at is None and run.since is None:
            values["backfilled_at"] = now
            values["backfill_progress"] = 1.0
    if not await release_lease(session, lease, **values):
        # Taken over or disconnected meanwhile: the run ends, the connection is not ours.
        run.status = SyncStatus.FAILED
        _with_errors(run, ["the connection was taken over or disconnected during the sync"])
    elif "backfilled_at" in values and run.kind == SyncKind.BACKFILL:
        run.backfill_progress = 1.0
    await session.flush()
    return FinishedSync(SyncCounts.from_json(run.counts), run.backfill_progress)


async def abandon_run(
    session: AsyncSession, shop_id: ShopId, run_id: uuid.UUID, *, now: datetime, error: str
) -> None:
    """Mark a run FAILED without touching the connection (its lease is no longer ours)."""
    run = await _run(session, shop_id, run_id)
    run.status = SyncStatus.FAILED
    run.finished_at = now
    _with_errors(run, [error])
    session.add(run)
    await session.flush()
