"""Mall syncs: `sync_connection` reads pages from the platform and stores them with their cursor.

The platform is asked for pages with no transaction open. While pages are stored, the next
ones are already being fetched (at most `PREFETCH_PAGES` ahead, see `prefetched`): the mall
and the database work at the same time. The pages already fetched when the store is free are
stored together, in order, in one unit of work (records, the last page's cursor, run counts,
lease renewal; up to about `MERGE_RECORDS` records, the first page alone), rescoring of the
customers they touched is requested after that commit, and a SYNC_PROGRESS event is
published per unit of work (`pages` counts the mall's pages; `backfill_progress` is the
backfill's, see `domain.sync.runs`). A failure to fetch is raised only after the pages
fetched before it are stored, as when fetching and storing took turns.

Failures: `PlatformUnavailable` closes the run and retries the job (arq `Retry`, honoured by
the in-process runner too) after the platform's `retry_after` or the backoff, whichever is
longer; after the last try the next scheduled sync picks the connection up again.
`PlatformAuthRevoked` sets the connection to NEEDS_CREDENTIALS; `PlatformRejected` fails the
run. Any other error fails the run and frees the connection before it propagates. A killed
process frees nothing: its lease expires after `Settings.sync_lease_seconds`, and the next
sync resumes after the last stored page.

`reconcile_connection` is the daily reconciliation: the same sync from `since`
`Settings.sync_reconcile_days` ago, recorded as a RECONCILE run, when the connection is still
due one (`domain.sync.schedule`).

A job stops after `Settings.sync_time_budget_seconds` (before the job timeout could cut it
off mid-page): its run ends SUCCEEDED but incomplete (no `last_sync_at`), and it enqueues the
next job, which resumes from the cursor.
"""

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import datetime, timedelta

from arq import Retry

from domain.connection.models import ConnectionStatus
from domain.credentials import CredentialCipher
from domain.db import utcnow
from domain.events import Event, Topic
from domain.ids import ShopId
from domain.jobs import Job
from domain.platforms import (
    PlatformAuthRevoked,
    PlatformError,
    PlatformUnavailable,
    SyncPage,
    reconcile_days,
)
from domain.risk.schedule import request_rescore
from domain.sync import runs
from domain.sync.counts import SyncCounts
from domain.sync.lease import Lease, LeaseLost
from domain.sync.schedule import reconciliation_due, schedule_reconciliations
from domain.sync.schedule import schedule_syncs as schedule_due_syncs
from domain.sync.statistics import analyze_due, refresh_statistics
from kizuki.jobs import backoff
from workers.context import WorkerContext, unit_of_work

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Pages fetched ahead of the ones being stored: enough to keep the mall's answers and the
# database's work overlapping and to merge several pages into one transaction, few enough
# that a stopped sync wastes little (a Shopify page of 250 orders is about 0.4 MB).
PREFETCH_PAGES = 32
# Pages already fetched and waiting are stored together, up to about this many records: one
# transaction's fixed costs (lease, run row, lookups, planning) then serve several pages, and
# a customer met on several of them has its aggregates recomputed once. On PostgreSQL 10,000
# (about 23 Shopify pages) against 2,000 took a 100,000-order backfill from about 4,100 to
# 5,200 orders/s. SQLite has one writer: API requests wait for the sync's transaction, so
# it stays short there.
MERGE_RECORDS = 10_000
SQLITE_MERGE_RECORDS = 2_000


class _End:
    """What the fetching task hands on last: nothing more, or the failure that ended it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def prefetched(
    pages: AsyncIterator[SyncPage],
    depth: int = PREFETCH_PAGES,
    *,
    merge_records: int = MERGE_RECORDS,
) -> AsyncGenerator[list[SyncPage], None]:
    """The same pages in the same order, fetched by a task of their own up to `depth` ahead,
    handed on in runs of consecutive pages to store together.

    A run is the next page and those already fetched behind it, while the run holds fewer
    than `merge_records` records; it never waits for a page. The first page comes alone, so
    a new sync shows progress as soon as it can. A failure of `pages` comes out after the
    pages fetched before it. Closing this iterator (or leaving it early) cancels the fetching
    and closes `pages`.
    """
    queue: asyncio.Queue[SyncPage | _End] = asyncio.Queue(maxsize=depth)

    async def fetch() -> None:
        try:
            async for page in pages:
                await queue.put(page)
        except BaseException as error:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # The mall's failure (even a CancelledError it raised) belongs to the consumer.
            await queue.put(_End(error))
            return
        await queue.put(_End())

    fetching = asyncio.create_task(fetch())
    limit = 0
    try:
        end: _End | None = None
        while end is None:
            item = await queue.get()
            if isinstance(item, _End):
                end = item
                break
            run = [item]
            size = len(item.records)
            while size < limit and not queue.empty():
                following = queue.get_nowait()
                if isinstance(following, _End):
                    end = following
                    break
                run.append(following)
                size += len(following.records)
            yield run
            limit = merge_records
        if end.error is not None:
            raise end.error
    finally:
        fetching.cancel()
        await asyncio.gather(fetching, return_exceptions=True)
        # Async generators hold the platform's HTTP stream until closed.
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()


async def sync_connection(
    ctx: WorkerContext, *, shop_id: str, connection_id: str, since: str | None = None
) -> None:
    """Sync one connection from its cursor (or from `since`, an ISO time); one at a time."""
    moment = datetime.fromisoformat(since) if since else None
    await run_sync(ctx, ShopId(uuid.UUID(shop_id)), uuid.UUID(connection_id), since=moment)


async def reconcile_connection(ctx: WorkerContext, *, shop_id: str, connection_id: str) -> None:
    """Re-read the last `Settings.sync_reconcile_days` days of one connection, if still due."""
    await run_reconcile(ctx, ShopId(uuid.UUID(shop_id)), uuid.UUID(connection_id))


async def run_reconcile(
    ctx: WorkerContext, shop_id: ShopId, connection_id: uuid.UUID, *, clock: Clock = utcnow
) -> runs.StartedSync | None:
    """The body of `reconcile_connection`; None when not due (any more), when its platform
    re-reads nothing (`reconcile_days`), or when not started."""
    now = clock()
    async with unit_of_work(ctx, shop_id=shop_id) as uow:
        due = await reconciliation_due(uow.session, shop_id, connection_id, now=now)
    if due is None:
        return None
    days = reconcile_days(ctx["platforms"].get(due), ctx["settings"].sync_reconcile_days)
    if days == 0:
        return None
    since = now - timedelta(days=days)
    return await run_sync(ctx, shop_id, connection_id, since=since, reconcile=True, clock=clock)


async def schedule_syncs(ctx: WorkerContext) -> None:
    """Enqueue a sync of every connection that is due, and the reconciliations that are
    (run every minute)."""
    settings = ctx["settings"]
    now = utcnow()
    async with unit_of_work(ctx) as uow:
        await schedule_due_syncs(
            uow.session, uow.jobs, now=now, interval_minutes=settings.sync_interval_minutes
        )
        if settings.sync_reconcile_days > 0:
            configured = settings.sync_reconcile_days
            quiet = [
                name
                for name, platform in ctx["platforms"].items()
                if reconcile_days(platform, configured) == 0
            ]
            await schedule_reconciliations(uow.session, uow.jobs, now=now, skip_platforms=quiet)


async def _publish(
    ctx: WorkerContext,
    started: runs.StartedSync,
    total: SyncCounts,
    status: str,
    backfill_progress: float | None,
) -> None:
    data: dict[str, str | int | float | bool | None] = {
        "connection_id": str(started.lease.connection_id),
        "run_id": str(started.run_id),
        "status": status,
        "backfill_progress": backfill_progress,
        **total.as_json(),
    }
    await ctx["events"].publish(Event(started.lease.shop_id, Topic.SYNC_PROGRESS, data))


async def _finish(
    ctx: WorkerContext,
    started: runs.StartedSync,
    lease: Lease,
    clock: Clock,
    *,
    error: str | None = None,
    status: ConnectionStatus | None = None,
    complete: bool = True,
) -> None:
    shop_id = started.lease.shop_id
    async with unit_of_work(ctx, shop_id=shop_id) as uow:
        finished = await runs.finish_sync(
            uow.session, started, lease, now=clock(), error=error, status=status, complete=complete
        )
        if not complete:
            uow.jobs.enqueue(
                Job.SYNC_CONNECTION,
                _job_id=f"sync_connection:{started.lease.connection_id}:after:{started.run_id}",
                shop_id=str(shop_id),
                connection_id=str(started.lease.connection_id),
                since=None,
            )
    outcome = "failed" if error else "succeeded"
    await _publish(ctx, started, finished.counts, outcome, finished.backfill_progress)


def _merge_records(database_url: str) -> int:
    return SQLITE_MERGE_RECORDS if database_url.startswith("sqlite") else MERGE_RECORDS


async def run_sync(
    ctx: WorkerContext,
    shop_id: ShopId,
    connection_id: uuid.UUID,
    *,
    since: datetime | None = None,
    reconcile: bool = False,
    clock: Clock = utcnow,
) -> runs.StartedSync | None:
    """The body of `sync_connection` (a reconciliation's with `reconcile`); None when another
    sync holds the connection."""
    settings = ctx["settings"]
    seconds = settings.sync_lease_seconds
    cipher = CredentialCipher(settings.secret_key.get_secret_value())
    async with unit_of_work(ctx, shop_id=shop_id) as uow:
        started = await runs.start_sync(
            uow.session,
            shop_id,
            connection_id,
            since=since,
            now=clock(),
            lease_seconds=seconds,
            cipher=cipher,
            reconcile=reconcile,
        )
    if started is None:
        logger.info("connection %s is being synced or inactive; skipped", connection_id)
        return None
    lease = started.lease
    platform = ctx["platforms"].get(started.platform)
    if platform is None:
        await _finish(ctx, started, lease, clock, error=f"no {started.platform} plugin installed")
        return started
    total = SyncCounts()
    progress = started.backfill_progress
    deadline = clock() + timedelta(seconds=settings.sync_time_budget_seconds)
    complete = True
    try:
        pages = prefetched(
            platform.sync_pages(started.account, started.cursor, since),
            merge_records=_merge_records(settings.database_url),
        )
        try:
            async for batch in pages:
                if total.pages and clock() >= deadline:
                    # Time is up: these pages are left for the next job, which resumes here
                    # (every job stores at least one page, so the sync always moves on).
                    complete = False
                    break
                async with unit_of_work(ctx, shop_id=shop_id) as uow:
                    stored = await runs.store_pages(
                        uow.session, started, lease, batch, now=clock(), lease_seconds=seconds
                    )
                    request_rescore(uow.jobs, shop_id, stored.records.touched_customer_ids)
                before = total.orders_inserted + total.customers_inserted
                lease, total, progress = stored.lease, stored.total, stored.backfill_progress
                await _publish(ctx, started, total, "running", progress)
                if analyze_due(before, total.orders_inserted + total.customers_inserted):
                    async with ctx["sessions"]() as session:
                        await refresh_statistics(session)
                        await session.commit()
        finally:
            await pages.aclose()
    except LeaseLost as lost:
        async with unit_of_work(ctx, shop_id=shop_id) as uow:
            await runs.abandon_run(
                uow.session, shop_id, started.run_id, now=clock(), error=str(lost)
            )
        await _publish(ctx, started, total, "failed", progress)
        return started
    except PlatformUnavailable as error:
        await _finish(ctx, started, lease, clock, error=f"unavailable: {error.message}")
        delay = max(error.retry_after or 0.0, backoff(ctx["job_try"]))
        raise Retry(defer=delay) from error
    except PlatformAuthRevoked as error:
        revoked = f"credentials revoked: {error.message}"
        await _finish(
            ctx, started, lease, clock, error=revoked, status=ConnectionStatus.NEEDS_CREDENTIALS
        )
        return started
    except PlatformError as error:
        await _finish(ctx, started, lease, clock, error=f"rejected: {error.message}")
        return started
    except Exception as error:
        # The worker wrapper: free the connection for the next sync, then fail the job.
        await _finish(ctx, started, lease, clock, error=f"sync failed: {error!r}")
        raise
    await _finish(ctx, started, lease, clock, complete=complete)
    return started
