"""`kizuki sync` and `kizuki connections`: a shop's mall connections, synced from a terminal.

The sync runs the worker's own job body (`workers.sync.run_sync`) in this process, with an
in-process job queue for what it asks for next (a sync that ran out of its time budget goes on
in a follow-up job; touched customers are rescored), and waits until all of it is done.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from arq import Retry

from domain.connection.accounts import require_connection
from domain.connection.errors import ConnectionInactive
from domain.connection.models import ConnectionStatus
from domain.connection.service import ConnectionRow, SyncRunRow, list_connections, list_sync_runs
from domain.db import AsyncSession, create_engine, session_factory, utcnow
from domain.ids import ShopId
from domain.ingest import IMPORT_ACCOUNT_ID
from domain.jobs import Job, JobRequest
from domain.platforms import StorePlatform
from domain.settings import Settings
from integrations import build_platforms
from kizuki.events import InProcessEventBus
from kizuki.jobs import InProcessJobQueue
from workers.context import WorkerContext
from workers.inprocess import build_inprocess_job_queue
from workers.main import HTTP_TIMEOUT_SECONDS
from workers.sync import run_sync


@dataclass(frozen=True, slots=True)
class ConnectionSync:
    """What syncing one connection did: its runs (follow-ups included), or why there were none."""

    connection: ConnectionRow
    runs: list[SyncRunRow]
    note: str | None = None


def _is_mall(row: ConnectionRow) -> bool:
    return row.external_account_id != IMPORT_ACCOUNT_ID


async def _chosen(
    session: AsyncSession, shop_id: ShopId, connection_id: uuid.UUID | None
) -> list[ConnectionRow]:
    rows = [row for row in await list_connections(session, shop_id) if _is_mall(row)]
    if connection_id is None:
        return [row for row in rows if row.status is ConnectionStatus.ACTIVE]
    await require_connection(session, shop_id, connection_id, field="connection")
    named = [row for row in rows if row.id == connection_id]
    if not named:
        raise ConnectionInactive("a CSV import connection has nothing to sync", "connection")
    if named[0].status is not ConnectionStatus.ACTIVE:
        raise ConnectionInactive(f"the connection is {named[0].status}", "connection")
    return named


async def list_shop_connections(settings: Settings, shop_id: ShopId) -> list[ConnectionRow]:
    """The shop's connections, oldest first (rows hold no credentials)."""
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        async with session_factory(engine)() as session:
            return await list_connections(session, shop_id)
    finally:
        await engine.dispose()


@dataclass
class _Held:
    """The sync's own queue: its follow-ups run after it, never beside it (SQLite takes one
    writer at a time, and a sync's pages and rescoring would contend for it)."""

    requests: list[JobRequest] = field(default_factory=list)

    async def send(self, requests: list[JobRequest]) -> None:
        self.requests.extend(requests)

    def take(self) -> list[JobRequest]:
        taken, self.requests = self.requests, []
        return taken


async def _sync_one(
    ctx: WorkerContext,
    held: _Held,
    queue: InProcessJobQueue[WorkerContext],
    shop_id: ShopId,
    connection_id: uuid.UUID,
    since: datetime | None,
) -> str | None:
    """Run the sync, then what it asked for (the rest of a long sync first); a note or None."""
    moment = since
    while True:
        try:
            started = await run_sync(ctx, shop_id, connection_id, since=moment)
        except Retry:
            return "the mall is unavailable; try again later"
        if started is None:
            return "another sync holds the connection; skipped"
        requests = held.take()
        rest = [
            request
            for request in requests
            if request.job is Job.SYNC_CONNECTION
            and request.kwargs["connection_id"] == str(connection_id)
        ]
        await queue.send([request for request in requests if request not in rest])
        await queue.drain()
        if not rest:
            return None
        given = rest[0].kwargs.get("since")
        moment = datetime.fromisoformat(given) if isinstance(given, str) else None


async def sync_shop(
    settings: Settings,
    shop_id: ShopId,
    *,
    connection_id: uuid.UUID | None = None,
    since: datetime | None = None,
    platforms: Mapping[str, StorePlatform] | None = None,
) -> list[ConnectionSync]:
    """Sync the shop's active mall connections (or the one named) now, one after the other;
    `platforms` replace the installed ones (tests)."""
    engine = create_engine(settings.database_url, pool_size=2)
    sessions = session_factory(engine)
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
            found = platforms if platforms is not None else build_platforms(http)
            events = InProcessEventBus()
            held = _Held()
            queue = build_inprocess_job_queue(settings, sessions, events, found, max_jobs=1)
            ctx = WorkerContext(
                settings=settings,
                sessions=sessions,
                events=events,
                job_queue=held,
                platforms=found,
                job_id="cli-sync",
                job_try=1,
            )
            try:
                async with sessions() as session:
                    chosen = await _chosen(session, shop_id, connection_id)
                results: list[ConnectionSync] = []
                for row in chosen:
                    began = utcnow()
                    note = await _sync_one(ctx, held, queue, shop_id, row.id, since)
                    async with sessions() as session:
                        runs = await list_sync_runs(session, shop_id, row.id, limit=100)
                    mine = [run for run in reversed(runs) if run.started_at >= began]
                    results.append(ConnectionSync(row, mine, note))
                return results
            finally:
                await queue.aclose()
    finally:
        await engine.dispose()
