"""The webhook inbox: each verified delivery stored once, then processed by a job.

A delivery is kept as it came (headers and raw body) until processed, then its body is
dropped: the row stays as the record that the event id was seen, so a replay is recognised
and never processed twice. Processing parses the body again (no network), stores the records
(older versions never overwrite newer ones, whatever the delivery order), acts on privacy
requests and asks for a sync when the event only said that something changed.
"""

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import select

from domain.connection.accounts import account_of, enqueue_sync
from domain.connection.models import Connection, ConnectionStatus, WebhookInbox
from domain.credentials import CredentialCipher
from domain.db import AsyncSession, upsert
from domain.ids import ConnectionId, ShopId
from domain.jobs import Job, Jobs
from domain.platforms import PlatformError, StorePlatform, WebhookEvent
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
    of `platform` and still holds credentials to verify with; else None."""
    statement = select(Connection).where(
        Connection.id == connection_id,
        Connection.platform == platform,
        Connection.status != ConnectionStatus.DISCONNECTED,
    )
    connection = (await session.exec(statement)).first()
    if connection is None or not connection.credentials_encrypted:
        return None
    return connection


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


async def process_inbox_entry(
    session: AsyncSession,
    jobs: Jobs,
    shop_id: ShopId,
    inbox_id: uuid.UUID,
    *,
    platforms: Mapping[str, StorePlatform],
    cipher: CredentialCipher,
    now: datetime,
) -> bool:
    """Act on one stored delivery, once; False when it was already processed (or is gone)."""
    # Claimed by a write first: a concurrent try waits for this one's commit and then finds
    # the entry processed (and SQLite never has to upgrade a read transaction to a write).
    inbox = WebhookInbox.__table__  # type: ignore[attr-defined]
    claimed = await session.exec(
        update(inbox)
        .where(inbox.c.shop_id == shop_id, inbox.c.id == inbox_id, inbox.c.processed_at.is_(None))
        .values(processed_at=now)
    )
    if claimed.rowcount != 1:
        return False
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
    if connection.status == ConnectionStatus.DISCONNECTED:
        # Disconnected (or purged by a shop redaction) since the delivery was accepted.
        entry.error = "the connection was disconnected before this delivery was processed"
        entry.payload = {}
        return True
    platform = platforms.get(connection.platform)
    if platform is None:
        entry.error = f"no {connection.platform} plugin installed"
        return True
    try:
        delivery = _delivery(entry.payload)
        event = platform.parse_webhook(
            account_of(connection, cipher), delivery.headers, delivery.body
        )
    except (PlatformError, ValueError) as error:
        entry.error = f"unusable webhook: {error}"
        return True
    connection_id = ConnectionId(connection.id)
    stored = await store_records(session, shop_id, connection_id, event.records)
    request_rescore(jobs, shop_id, stored.touched_customer_ids)
    if event.privacy is not None:
        await act_on_privacy_request(session, shop_id, connection_id, event.privacy, now=now)
    if event.resync and connection.status == ConnectionStatus.ACTIVE:
        enqueue_sync(jobs, shop_id, connection.id)
    entry.error = "; ".join(stored.errors)[:2000] or None
    entry.payload = {}
    await session.flush()
    return True
