"""What belongs to a customer besides its identities, and how it moves in a merge and back.

Rows are moved with set-based updates scoped by shop; what cannot move (a consent the survivor
holds for the same channel) is kept in the merge's snapshot in a JSON form that `decode_row`
reads back exactly.
"""

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python
from sqlalchemy import Table, delete, insert, select, update
from sqlmodel import SQLModel

from domain.campaign.models import Enrollment
from domain.consent.models import Consent, ConsentStatus
from domain.db import AsyncSession
from domain.errors import MergeBlocked
from domain.ids import ShopId
from domain.ingest.statements import fetch_all, table_of
from domain.message.models import Message, Task
from domain.order.models import Order
from domain.risk.models import RiskScore
from domain.risk.reasons import shown_mask
from domain.subscription.models import Subscription

_CONSENT = table_of(Consent)
_RISK = table_of(RiskScore)
# Rows that simply follow the customer; their ids are recorded so that exactly they go back.
MOVED_BY_ID: dict[str, Table] = {
    "enrollment": table_of(Enrollment),
    "message": table_of(Message),
    "task": table_of(Task),
    "consent": _CONSENT,
}
# Rows that follow the identity that bought them.
BOUGHT: dict[str, Table] = {"order": table_of(Order), "subscription": table_of(Subscription)}


def encode_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as JSON values (times as ISO 8601 with their offset, UUIDs as strings)."""
    encoded: dict[str, Any] = to_jsonable_python(dict(row))
    return encoded


def decode_row(model: type[SQLModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """A row of `model` from `encode_row`'s form: each value parsed as its field's type."""
    decoded: dict[str, Any] = {}
    for name, value in data.items():
        annotation = model.model_fields[name].annotation
        assert annotation is not None
        decoded[name] = TypeAdapter(annotation).validate_python(value)
    return decoded


async def ids_where(session: AsyncSession, table: Table, *where: Any) -> list[uuid.UUID]:
    """Ids of the rows of `table` meeting every condition of `where`."""
    return [row[0] for row in await fetch_all(session, select(table.c.id).where(*where))]


async def check_enrollments(
    session: AsyncSession, shop_id: ShopId, survivor_id: uuid.UUID, absorbed_id: uuid.UUID
) -> None:
    """Raise `MergeBlocked` when both customers are enrolled in one campaign cycle."""
    enrollment = MOVED_BY_ID["enrollment"].c
    rows = await fetch_all(
        session,
        select(enrollment.customer_id, enrollment.campaign_id, enrollment.cycle_key).where(
            enrollment.shop_id == shop_id,
            enrollment.customer_id.in_([survivor_id, absorbed_id]),
        ),
    )
    held = {(campaign, cycle) for owner, campaign, cycle in rows if owner == survivor_id}
    if any((campaign, cycle) in held for owner, campaign, cycle in rows if owner == absorbed_id):
        raise MergeBlocked(
            "both customers are enrolled in the same campaign cycle", field="absorbed_id"
        )


async def move_rows(
    session: AsyncSession,
    shop_id: ShopId,
    table: Table,
    source: uuid.UUID,
    target: uuid.UUID,
    *extra: Any,
) -> None:
    """Give `source`'s rows of `table` (those meeting `extra`) to `target`."""
    await session.exec(
        update(table)
        .where(table.c.shop_id == shop_id, table.c.customer_id == source, *extra)
        .values(customer_id=target)
    )


async def merge_consents(
    session: AsyncSession,
    shop_id: ShopId,
    survivor_id: uuid.UUID,
    absorbed_id: uuid.UUID,
    snapshot: dict[str, Any],
) -> None:
    """Consents the survivor holds for the same channel and purpose stay the survivor's, except
    that a revocation by the absorbed customer wins; both originals are kept for an unmerge."""
    consent = _CONSENT.c
    rows = await fetch_all(
        session,
        select(_CONSENT).where(
            consent.shop_id == shop_id, consent.customer_id.in_([survivor_id, absorbed_id])
        ),
    )
    held = {
        (row.channel, row.purpose): dict(row._mapping)
        for row in rows
        if row.customer_id == survivor_id
    }
    dropped, overwritten = [], []
    for row in rows:
        if row.customer_id != absorbed_id or (row.channel, row.purpose) not in held:
            continue
        own = held[(row.channel, row.purpose)]
        dropped.append(encode_row(dict(row._mapping)))
        if row.status == ConsentStatus.REVOKED and own["status"] != ConsentStatus.REVOKED:
            overwritten.append(encode_row(own))
            await session.exec(
                update(_CONSENT)
                .where(consent.shop_id == shop_id, consent.id == own["id"])
                .values(
                    status=row.status,
                    source=row.source,
                    recorded_at=row.recorded_at,
                    proof=row.proof,
                )
            )
        await session.exec(delete(_CONSENT).where(consent.shop_id == shop_id, consent.id == row.id))
    snapshot["dropped_consents"] = dropped
    snapshot["overwritten_consents"] = overwritten


async def take_risk_score(
    session: AsyncSession, shop_id: ShopId, customer_id: uuid.UUID
) -> dict[str, Any] | None:
    """Remove a customer's current score, returning it; its history stays under its id."""
    where = (_RISK.c.shop_id == shop_id, _RISK.c.customer_id == customer_id)
    found = await fetch_all(session, select(_RISK).where(*where))
    await session.exec(delete(_RISK).where(*where))
    return encode_row(dict(found[0]._mapping)) if found else None


async def restore_consents(
    session: AsyncSession, shop_id: ShopId, snapshot: Mapping[str, Any]
) -> None:
    for data in snapshot["overwritten_consents"]:
        row = decode_row(Consent, data)
        await session.exec(
            update(_CONSENT)
            .where(_CONSENT.c.shop_id == shop_id, _CONSENT.c.id == row["id"])
            .values(**row)
        )
    for data in snapshot["dropped_consents"]:
        await session.exec(insert(_CONSENT).values(**decode_row(Consent, data)))


async def restore_risk_score(session: AsyncSession, stored: Mapping[str, Any] | None) -> None:
    """Put back a score `take_risk_score` took (nothing for None)."""
    if stored is None:
        return
    row = decode_row(RiskScore, stored)
    # Snapshots taken before scores kept their shown signs (migration 0008) lack them.
    row.setdefault("shown_signs", shown_mask(row.get("reasons") or []))
    await session.exec(insert(_RISK).values(**row))
