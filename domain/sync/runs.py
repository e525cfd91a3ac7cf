"""A sync run's record: started with the lease, one update per stored batch of pages, then
finished.

Each batch's records (one page, or consecutive pages merged), its last cursor and the run's
counts are written in one transaction (by the caller's unit of work), so a sync killed between
batches resumes after the last stored one.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import select

from domain.connection.accounts import account_of
from domain.connection.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from domain.credentials import CredentialCipher
from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
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


@dataclass(frozen=True, slots=True)
class StoredPage:
    lease: Lease
    page: SyncCounts
    total: SyncCounts
    records: StoredRecords


async def start_sync(
    session: AsyncSession,
    shop_id: ShopId,
    connection_id: uuid.UUID,
    *,
    since: datetime | None,
    now: datetime,
    lease_seconds: int,
    cipher: CredentialCipher,
) -> StartedSync | None:
    """Lease the connection and open a run; None when it is held by another sync or inactive."""
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
    kind = "manual" if since is not None else "incremental" if connection.cursors else "backfill"
    run = SyncRun(shop_id=shop_id, connection_id=connection_id, kind=kind, since=since)
    run.started_at = now
    session.add(run)
    await session.flush()
    cursor = {str(k): str(v) for k, v in (connection.cursors or {}).items()}
    return StartedSync(lease, run.id, connection.platform, account_of(connection, cipher), cursor)


async def _run(session: AsyncSession, shop_id: ShopId, run_id: uuid.UUID) -> SyncRun:
    statement = select(SyncRun).where(SyncRun.shop_id == shop_id, SyncRun.id == run_id)
    return (await session.exec(statement)).one()


def _with_errors(run: SyncRun, errors: Sequence[str]) -> None:
    room = MAX_RUN_ERRORS - len(run.errors)
    if errors and room > 0:
        run.errors = [*run.errors, *errors[:room]]


def merged(pages: Sequence[SyncPage]) -> SyncPage:
    """Consecutive pages as one: their records in order, the last page's cursor and progress,
    their rejections together and their fetching costs summed."""
    if len(pages) == 1:
        return pages[0]
    last = pages[-1]
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
        progress=last.progress,
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
    """Store consecutive pages' records, the last one's cursor and the run's counts together;
    renews `lease`. The pages go in as one batch (ingest keeps the newest version of a record
    met twice), so a crash leaves the cursor before all of them or after all of them.

    Raises `LeaseLost` (roll back) when the connection is no longer this sync's.
    """
    if not pages:
        raise ValueError("no pages to store")
    page = merged(pages)
    shop_id = started.lease.shop_id
    connection_id = ConnectionId(started.lease.connection_id)
    # The lease first: a write, so the transaction holds the connection from its start.
    lease = await renew_lease(
        session, lease, now=now, seconds=lease_seconds, cursors=dict(page.cursor)
    )
    records = await store_records(session, shop_id, connection_id, page.records)
    counts = (
        seen(page.records)
        + fetched(page.stats, len(page.rejected), pages=len(pages))
        + records.counts
    )
    run = await _run(session, shop_id, started.run_id)
    total = SyncCounts.from_json(run.counts) + counts
    run.counts = total.as_json()
    rejected = [f"{r.kind} {r.external_id or '?'}: {r.problem}" for r in page.rejected]
    _with_errors(run, [*rejected, *records.errors])
    session.add(run)
    await session.flush()
    return StoredPage(lease, counts, total, records)


async def finish_sync(
    session: AsyncSession,
    started: StartedSync,
    lease: Lease,
    *,
    now: datetime,
    error: str | None = None,
    status: ConnectionStatus | None = None,
    complete: bool = True,
) -> SyncCounts:
    """Close the run (SUCCEEDED without `error`) and free the connection; the run's counts.

    A complete success sets `last_sync_at`, and `backfilled_at` the first time a sync without
    `since` completes; an incomplete one (its time was up, another job continues from the
    cursor) sets neither. `status` changes the connection's status (NEEDS_CREDENTIALS when
    revoked).
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
    if not await release_lease(session, lease, **values):
        # Taken over or disconnected meanwhile: the run ends, the connection is not ours.
        run.status = SyncStatus.FAILED
        _with_errors(run, ["the connection was taken over or disconnected during the sync"])
    await session.flush()
    return SyncCounts.from_json(run.counts)


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
