"""Reads of merges and of the evidence that linked identities, for staff to review."""

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from domain.customer.models import Customer, CustomerIdentity, CustomerMerge
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import fetch_all, table_of

_CUSTOMER = table_of(Customer)
_IDENTITY = table_of(CustomerIdentity)
_MERGE = table_of(CustomerMerge)


@dataclass(frozen=True, slots=True)
class MergeRow:
    id: uuid.UUID
    survivor_id: uuid.UUID
    absorbed_id: uuid.UUID
    identity_ids: list[uuid.UUID]
    actor: str | None
    merged_at: datetime
    unmerged_at: datetime | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """An identity's contact data now matches another customer: staff may merge the two."""

    customer_id: uuid.UUID
    matched: str
    identity_id: uuid.UUID
    at: datetime


@dataclass(frozen=True, slots=True)
class IdentityEvidence:
    """How an identity came to its customer, and what it suggests now."""

    identity_id: uuid.UUID
    customer_id: uuid.UUID
    # Set when ingest linked it by a shared hash: "email" or "phone", and with which identity.
    matched: str | None
    matched_identity_id: uuid.UUID | None
    linked_at: datetime | None
    # Other customers that matched too; the oldest one was chosen.
    other_candidates: list[uuid.UUID]
    # Set when staff merged it in.
    merge_id: uuid.UUID | None
    suggestion: Suggestion | None


def _merge_row(row: Any) -> MergeRow:
    return MergeRow(
        id=row.id,
        survivor_id=row.survivor_id,
        absorbed_id=row.absorbed_id,
        identity_ids=[uuid.UUID(value) for value in row.identity_ids],
        actor=row.evidence.get("actor"),
        merged_at=row.merged_at,
        unmerged_at=row.unmerged_at,
    )


async def merges_of_customers(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[MergeRow]]:
    """The merges each customer survived (undone ones included), newest first."""
    found: dict[uuid.UUID, list[MergeRow]] = {customer_id: [] for customer_id in customer_ids}
    statement = (
        select(_MERGE)
        .where(_MERGE.c.shop_id == shop_id, _MERGE.c.survivor_id.in_(list(customer_ids)))
        .order_by(_MERGE.c.merged_at.desc(), _MERGE.c.id.desc())
    )
    for row in await fetch_all(session, statement):
        found[row.survivor_id].append(_merge_row(row))
    return found


async def get_merge(session: AsyncSession, shop_id: ShopId, merge_id: uuid.UUID) -> MergeRow:
    """A merge of the shop, as stored now; `LookupError` when there is none (callers have
    just written it)."""
    statement = select(_MERGE).where(_MERGE.c.shop_id == shop_id, _MERGE.c.id == merge_id)
    found = await fetch_all(session, statement)
    if not found:
        raise LookupError(f"no merge {merge_id}")
    return _merge_row(found[0])


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _uuid(value: object) -> uuid.UUID | None:
    return uuid.UUID(value) if isinstance(value, str) else None


def suggestion_of(evidence: Mapping[str, Any], own: uuid.UUID) -> Suggestion | None:
    suggested = evidence.get("suggested")
    if not isinstance(suggested, dict):
        return None
    customer_id, identity_id = (
        _uuid(suggested.get("customer_id")),
        _uuid(suggested.get("identity_id")),
    )
    at = _time(suggested.get("at"))
    if customer_id is None or identity_id is None or at is None or customer_id == own:
        return None
    return Suggestion(customer_id, str(suggested.get("matched", "")), identity_id, at)


async def evidence_of_customers(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[IdentityEvidence]]:
    """Evidence of each customer's identities that carry any, oldest identity first.

    A suggestion is left out once it is settled: its customer is the identity's own now, or
    no longer exists.
    """
    identity = _IDENTITY.c
    statement = (
        select(identity.id, identity.customer_id, identity.merge_evidence)
        .where(identity.shop_id == shop_id, identity.customer_id.in_(list(customer_ids)))
        .order_by(identity.created_at, identity.id)
    )
    rows = [row for row in await fetch_all(session, statement) if row.merge_evidence]
    suggested = {
        s.customer_id
        for row in rows
        if (s := suggestion_of(row.merge_evidence, row.customer_id)) is not None
    }
    existing: set[uuid.UUID] = set()
    if suggested:
        customers = select(_CUSTOMER.c.id).where(
            _CUSTOMER.c.shop_id == shop_id, _CUSTOMER.c.id.in_(list(suggested))
        )
        existing = {row.id for row in await fetch_all(session, customers)}
    found: dict[uuid.UUID, list[IdentityEvidence]] = {
        customer_id: [] for customer_id in customer_ids
    }
    for row in rows:
        evidence: Mapping[str, Any] = row.merge_evidence
        suggestion = suggestion_of(evidence, row.customer_id)
        if suggestion is not None and suggestion.customer_id not in existing:
            suggestion = None
        merged = evidence.get("merged")
        found[row.customer_id].append(
            IdentityEvidence(
                identity_id=row.id,
                customer_id=row.customer_id,
                matched=evidence.get("matched"),
                matched_identity_id=_uuid(evidence.get("identity_id")),
                linked_at=_time(evidence.get("at")),
                other_candidates=[uuid.UUID(c) for c in evidence.get("candidates", [])],
                merge_id=_uuid(merged.get("merge_id")) if isinstance(merged, dict) else None,
                suggestion=suggestion,
            )
        )
    return found
