"""The webhook inbox: each verified delivery stored once, then processed by a job.

A delivery is kept as it came (headers and raw body) until processed, then its body is
dropped: the row stays as the record that the event id was seen, so a replay is recognised
and never processed twice. Processing (`domain.connection.inbox`) parses the body again,
stores the records (older versions never overwrite newer ones, whatever the delivery order),
acts on privacy requests and asks for a sync when the event only said that something changed.
"""

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from domain.connection.models import Connection, ConnectionStatus, WebhookInbox
from domain.db import AsyncSession, upsert
from domain.jobs import Job, Jobs
from domain.platforms import WebhookEvent

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


def delivery_of(payload: Mapping[str, object]) -> Delivery:
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
