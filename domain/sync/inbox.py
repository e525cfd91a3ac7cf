"""The webhook inbox: each verified delivery stored once, then processed by a job.

A delivery is kept as it came (headers and raw body) until processed, then its body is
dropped: the row stays as the record that the event id was seen, so a replay is recognised
and never processed twice. The endpoint stores it (`accept_webhook`); the `process_webhook`
job then acts on it in two steps, so no transaction is open while a mall is called:

1. `orders_to_refetch` (read only): the orders the delivery names that its platform can read
   again by id (`OrderFetcher`); the job fetches them with no transaction open.
2. `process_inbox_entry` (in the job's unit of work): parses the body again, stores its
   records (older versions never overwrite newer ones, whatever the delivery order) and the
   fetched orders, acts on a privacy request, asks for a sync when the event only said that
   something changed.

A record the domain refuses may only be early: a Shopify billing-cycle skip can arrive before
the sync has stored its contract. Such a delivery is not lost: its error is recorded, a sync of
the connection is enqueued, and the entry stays unprocessed (body kept) so the job can try it
again after that sync (`InboxOutcome.RETRY`); on the last try whatever is still refused is
recorded and the entry is closed.

A disconnected connection keeps its webhook keys, and its privacy requests are stored and acted
on as a connected one's; its other deliveries are neither stored nor, if accepted before the
disconnect, processed. An event saying the account uninstalled Kizuki (`uninstalled`)
disconnects the connection as the `disconnect` mutation does.
"""

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import select

from domain.connection.accounts import account_of, enqueue_sync, mark_disconnected
from domain.connection.models import Connection, ConnectionStatus, WebhookInbox
from domain.credentials import CredentialCipher
from domain.db import AsyncSession, upsert
from domain.ids import ConnectionId, ShopId
from domain.jobs import Job, Jobs
from domain.platforms import (
    OrderFetcher,
    PlatformAccount,
    PlatformError,
    RecordBatch,
    StorePlatform,
    SyncPage,
    WebhookEvent,
)
from domain.privacy.service import act_on_privacy_request
from domain.risk.schedule import request_rescore
from domain.sync.records import store_records

# Headers never worth keeping (and never needed to parse a webhook).
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class Delivery:
    headers: Mapping[str, str]
    body: bytes


def _payload(delivery: Delivery) -> dict[str, object]:
    headers = {
        k.lower(): v for k, v in delivery.headers.items() if k.lower() not in _DROPPED_HEADERS
    }
    return {"headers": headers, "body_base64": base64.b64encode(delivery.body).decode()}


def _delivery(payload: Mapping[str, object]) -> Delivery:
    headers = payload.get("headers")
    body = payload.get("body_base64")
    if not isinstance(headers, dict) or not isinstance(body, str):
        raise ValueError("the inbox entry holds no delivery")
    return Delivery({str(k): str(v) for k, v in headers.items()}, base64.b64decode(body))


async def find_webhook_connection(
    session: AsyncSession, platform: str, connection_id: uuid.UUID
) -> Connection | None:
    """The connection a webhook URL names (any shop: the URL is all the mall sends), if it is
    of `platform` and still holds credentials to verify with (a disconnected one keeps its
    webhook keys); else None."""
    statement = select(Connection).where(
        Connection.id == connection_id, Connection.platform == platform
    )
    connection = (await session.exec(statement)).first()
    if connection is None or not connection.credentials_encrypted:
        return None
    return connection


def is_wanted(connection: Connection, event: WebhookEvent) -> bool:
    """Whether a verified delivery is to be stored: every one of a connected account; only
    privacy requests once it is disconnected (they outlive the connection)."""
    return connection.status != ConnectionStatus.DISCONNECTED or event.privacy is not None


async def accept_webhook(
    session: AsyncSession,
    jobs: Jobs,
    connection: Connection,
    event: WebhookEvent,
    delivery: Delivery,
    *,
    now: datetime,
) -> bool:
    """Store a verified delivery once per event id and enqueue its processing after commit;
    False for a replay (nothing stored, nothing enqueued)."""
    inbox_id = uuid.uuid4()
    row = {
        "shop_id": connection.shop_id,
        "id": inbox_id,
        "connection_id": connection.id,
        "event_id": event.event_id[:200],
        "topic": event.topic[:100],
        "payload": _payload(delivery),
        "received_at": now,
    }
    statement = upsert(
        session, WebhookInbox, [row], keys=["shop_id", "connection_id", "event_id"]
    ).returning(WebhookInbox.__table__.c.id)  # type: ignore[attr-defined]
    inserted = (await session.exec(statement)).first()
    if inserted is None:
        return False
    jobs.enqueue(
        Job.PROCESS_WEBHOOK,
        _job_id=f"process_webhook:{inbox_id}",
        shop_id=str(connection.shop_id),
        inbox_id=str(inbox_id),
    )
    return True


_ERROR_LIMIT = 2000
_DROPPED = "the connection was disconnected before this delivery was processed"


class InboxOutcome(StrEnum):
    PROCESSED = "processed"
    # Already processed by another try, or gone: nothing was done.
    SKIPPED = "skipped"
    # Some records were refused; a sync was asked for and the entry waits for another try.
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Refetch:
    """Orders a delivery names, and the platform and account to read them from."""

    platform: OrderFetcher
    account: PlatformAccount
    order_ids: tuple[str, ...]


def _parsed(
    connection: Connection,
    entry: WebhookInbox,
    platform: StorePlatform,
    cipher: CredentialCipher,
) -> WebhookEvent:
    delivery = _delivery(entry.payload)
    return platform.parse_webhook(account_of(connection, cipher), delivery.headers, delivery.body)


async def orders_to_refetch(
    session: AsyncSession,
    shop_id: ShopId,
    inbox_id: uuid.UUID,
    *,
    platforms: Mapping[str, StorePlatform],
    cipher: CredentialCipher,
) -> Refetch | None:
    """The orders an unprocessed delivery names for re-reading, if its platform can; else None
    (also for unusable deliveries: processing records why)."""
    entry = (
        await session.exec(
            select(WebhookInbox).where(
                WebhookInbox.shop_id == shop_id,
                WebhookInbox.id == inbox_id,
                WebhookInbox.processed_at.is_(None),  # type: ignore[union-attr]
            )
        )
    ).first()
    if entry is None:
        return None
    connection = (
        await session.exec(
            select(Connection).where(
                Connection.shop_id == shop_id, Connection.id == entry.connection_id
            )
        )
    ).one()
    platform = platforms.get(connection.platform)
    if connection.status != ConnectionStatus.ACTIVE or platform is None:
        return None
    fetcher = platform if isinstance(platform, OrderFetcher) else None
    if fetcher is None:
        return None
    try:
        event = _parsed(connection, entry, platform, cipher)
    except (PlatformError, ValueError):
        return None
    if not event.refetch_order_ids:
        return None
    return Refetch(fetcher, account_of(connection, cipher), event.refetch_order_ids)


def _merged(first: RecordBatch, second: RecordBatch) -> RecordBatch:
    return RecordBatch(
        customers=first.customers + second.customers,
        orders=first.orders + second.orders,
        subscriptions=first.subscriptions + second.subscriptions,
        subscription_events=first.subscription_events + second.subscription_events,
    )


async def process_inbox_entry(
    session: AsyncSession,
    jobs: Jobs,
    shop_id: ShopId,
    inbox_id: uuid.UUID,
    *,
    platforms: Mapping[str, StorePlatform],
    cipher: CredentialCipher,
    now: datetime,
    fetched: SyncPage | None = None,
    problems: Sequence[str] = (),
    last_try: bool = True,
) -> InboxOutcome:
    """Act on one stored delivery (module docstring). `fetched`: the orders it named, read
    again; `problems`: why they could not be (recorded). Refused records give RETRY unless
    `last_try`, which records them and closes the entry."""
    # Claimed by a write first: a concurrent try waits for this one's commit and then finds
    # the entry processed (and SQLite never has to upgrade a read transaction to a write).
    inbox = WebhookInbox.__table__  # type: ignore[attr-defined]
    claimed = await session.exec(
        update(inbox)
        .where(inbox.c.shop_id == shop_id, inbox.c.id == inbox_id, inbox.c.processed_at.is_(None))
        .values(processed_at=now)
    )
    if claimed.rowcount != 1:
        return InboxOutcome.SKIPPED
    statement = select(WebhookInbox).where(
        WebhookInbox.shop_id == shop_id, WebhookInbox.id == inbox_id
    )
    entry = (await session.exec(statement)).one()
    # The connection's row lock serialises ingest per connection (webhooks and sync pages,
    # which renew their lease on that row first): concurrent deliveries of one new customer
    # would otherwise race to create it.
    connection = (
        await session.exec(
            select(Connection)
            .where(Connection.shop_id == shop_id, Connection.id == entry.connection_id)
            .with_for_update()
        )
    ).one()
    disconnected = connection.status == ConnectionStatus.DISCONNECTED
    platform = platforms.get(connection.platform)
    if platform is None:
        entry.error = f"no {connection.platform} plugin installed"
        return InboxOutcome.PROCESSED
    try:
        event = _parsed(connection, entry, platform, cipher)
    except (PlatformError, ValueError) as error:
        entry.error = _DROPPED if disconnected else f"unusable webhook: {error}"
        entry.payload = {}
        return InboxOutcome.PROCESSED
    connection_id = ConnectionId(connection.id)
    if disconnected:
        # Only privacy requests outlive a disconnect (`is_wanted`); what else was accepted
        # before it (or before a shop redaction's purge) is dropped.
        if event.privacy is None:
            entry.error = _DROPPED
        else:
            await act_on_privacy_request(session, shop_id, connection_id, event.privacy, now=now)
        entry.payload = {}
        await session.flush()
        return InboxOutcome.PROCESSED
    batch = event.records if fetched is None else _merged(event.records, fetched.records)
    stored = await store_records(session, shop_id, connection_id, batch)
    request_rescore(jobs, shop_id, stored.touched_customer_ids)
    if event.privacy is not None:
        await act_on_privacy_request(session, shop_id, connection_id, event.privacy, now=now)
    if event.uninstalled:
        await mark_disconnected(
            session, connection, platform, cipher=cipher, actor=f"webhook:{event.topic}"
        )
    active = connection.status == ConnectionStatus.ACTIVE
    refused = list(stored.errors)
    if fetched is not None:
        refused += [f"{r.kind} {r.external_id}: {r.problem}" for r in fetched.rejected]
    if stored.errors and active and not last_try:
        # Refused records may refer to what a sync has not stored yet: sync, then try again.
        enqueue_sync(jobs, shop_id, connection.id)
        entry.processed_at = None
        entry.error = ("waiting for a sync: " + "; ".join(refused))[:_ERROR_LIMIT]
        await session.flush()
        return InboxOutcome.RETRY
    if (event.resync or stored.errors) and active:
        enqueue_sync(jobs, shop_id, connection.id)
    entry.error = "; ".join([*refused, *problems])[:_ERROR_LIMIT] or None
    entry.payload = {}
    await session.flush()
    return InboxOutcome.PROCESSED
