"""Customers and their identities: one identity per (connection, external id), a new identity
makes a new customer; contact data is normalised and hashed on the way in."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ids import new_id
from domain.ingest.contact import e164, normalise_email, sha256_hex
from domain.ingest.context import Counts, IngestContext, Touched, is_older, newest_by_key
from domain.ingest.statements import (
    chunked,
    execute_many,
    fetch_all,
    guarded_upsert,
    insert_rows,
    one_of,
    returning_many,
    table_of,
)
from domain.platforms import CustomerRecord, Platform

_CUSTOMER = table_of(Customer)
_IDENTITY = table_of(CustomerIdentity)

# Platforms whose terms forbid marketing use of their buyers' data.
MARKETING_RESTRICTED_PLATFORMS = frozenset({Platform.AMAZON.value})


@dataclass(frozen=True, slots=True)
class _Stored:
    identity_id: uuid.UUID
    customer_id: uuid.UUID
    values: tuple[Any, ...]
    source_updated_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Profile:
    """A record in the stored form: what both tables get and what "unchanged" compares."""

    display_name: str
    email: str | None
    email_hash: str | None
    email_masked: bool
    phone: str | None
    phone_hash: str | None
    birth_date: date | None

    @classmethod
    def of(cls, record: CustomerRecord) -> "_Profile":
        email = normalise_email(record.email)
        if email is not None and len(email.address) > 320:
            email = None
        phone = e164(record.phone)
        raw_phone = (record.phone or "").strip()[:32] or None
        return cls(
            display_name=record.display_name.strip()[:200],
            email=email.address if email else None,
            email_hash=email.hash if email else None,
            email_masked=email.masked if email else False,
            phone=phone or raw_phone,
            phone_hash=sha256_hex(phone) if phone else None,
            birth_date=record.birth_date,
        )

    def values(self) -> tuple[Any, ...]:
        return (
            self.display_name,
            self.email,
            self.email_hash,
            self.email_masked,
            self.phone,
            self.phone_hash,
            self.birth_date,
        )


async def _load(
    session: AsyncSession, context: IngestContext, external_ids: Sequence[str]
) -> dict[str, _Stored]:
    stored: dict[str, _Stored] = {}
    for chunk in chunked(external_ids):
        identity, customer = _IDENTITY.c, _CUSTOMER.c
        statement = (
            select(
                identity.external_id,
                identity.id,
                identity.customer_id,
                identity.source_updated_at,
                customer.display_name,
                identity.email,
                identity.email_hash,
                identity.email_masked,
                customer.phone,
                identity.phone_hash,
                customer.birth_date,
                customer.created_at,
            )
            .join_from(
                _IDENTITY,
                _CUSTOMER,
                (customer.shop_id == identity.shop_id) & (customer.id == identity.customer_id),
            )
            .where(
                identity.shop_id == context.shop_id,
                identity.connection_id == context.connection_id,
                one_of(session, identity.external_id, chunk),
            )
        )
        for row in await fetch_all(session, statement):
            external_id, identity_id, customer_id, updated_at, *values, created_at = row
            stored[external_id] = _Stored(
                identity_id, customer_id, tuple(values), updated_at, created_at
            )
    return stored


def _customer_row(
    context: IngestContext,
    customer_id: uuid.UUID,
    profile: _Profile,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "shop_id": context.shop_id,
        "id": customer_id,
        "display_name": profile.display_name,
        "email": profile.email,
        "phone": profile.phone,
        "birth_date": profile.birth_date,
        "marketing_restricted": context.platform in MARKETING_RESTRICTED_PLATFORMS,
        "first_order_at": None,
        "last_order_at": None,
        "order_count": 0,
        "total_spent": 0,
        "currency": context.currency,
        "created_at": created_at,
        "updated_at": context.now,
    }


def _identity_row(
    context: IngestContext,
    customer_id: uuid.UUID,
    external_id: str,
    profile: _Profile,
    source_updated_at: datetime | None,
) -> dict[str, Any]:
    return {
        "shop_id": context.shop_id,
        "id": new_id(),
        "customer_id": customer_id,
        "connection_id": context.connection_id,
        "platform": context.platform,
        "external_id": external_id,
        "email": profile.email,
        "email_hash": profile.email_hash,
        "phone_hash": profile.phone_hash,
        "email_masked": profile.email_masked,
        "merge_evidence": {},
        "source_updated_at": source_updated_at,
        "created_at": context.now,
    }


_EMPTY = _Profile("", None, None, False, None, None, None)


async def upsert_customers(
    session: AsyncSession,
    context: IngestContext,
    records: Sequence[CustomerRecord],
    referenced: Mapping[str, datetime],
    touched: Touched,
) -> tuple[dict[str, uuid.UUID], Counts]:
    """Customer ids for every record and every referenced external id, creating what is new.

    `referenced` maps external ids that orders or subscriptions point at to their earliest
    time; unknown ones become bare customers, created at that time (and counted as inserted).
    """
    newest = newest_by_key((record.external_id, record) for record in records)
    wanted = sorted(newest.keys() | referenced.keys())
    stored = await _load(session, context, wanted)
    ids = {external_id: found.customer_id for external_id, found in stored.items()}

    new_customers: list[dict[str, Any]] = []
    new_identities: list[dict[str, Any]] = []
    changed_customers: dict[uuid.UUID, dict[str, Any]] = {}
    changed_identities: list[dict[str, Any]] = []
    unchanged = 0
    for external_id in wanted:
        record = newest.get(external_id)
        profile = _Profile.of(record) if record is not None else _EMPTY
        found = stored.get(external_id)
        if found is None:
            customer_id = new_id()
            ids[external_id] = customer_id
            created_at = (record.created_at if record else None) or referenced.get(
                external_id, context.now
            )
            updated_at = record.source_updated_at if record else None
            new_customers.append(_customer_row(context, customer_id, profile, created_at))
            new_identities.append(
                _identity_row(context, customer_id, external_id, profile, updated_at)
            )
            continue
        if record is None:
            continue
        created_at = record.created_at or found.created_at
        if is_older(record.source_updated_at, found.source_updated_at) or (
            found.values == profile.values()
            and found.source_updated_at == record.source_updated_at
            and found.created_at == created_at
        ):
            unchanged += 1
            continue
        changed_customers[found.customer_id] = _customer_row(
            context, found.customer_id, profile, created_at
        )
        changed_identities.append(
            _identity_row(
                context, found.customer_id, external_id, profile, record.source_updated_at
            )
        )

    await insert_rows(session, _CUSTOMER, new_customers)
    await insert_rows(session, _IDENTITY, new_identities)
    updated = await _apply_updates(session, changed_customers, changed_identities)
    touched.add(row["id"] for row in new_customers)
    touched.add(updated)
    counts = Counts(
        inserted=len(new_identities),
        updated=len(updated),
        unchanged=unchanged + len(changed_identities) - len(updated),
    )
    return ids, counts


async def _apply_updates(
    session: AsyncSession,
    customers: Mapping[uuid.UUID, Mapping[str, Any]],
    identities: Sequence[Mapping[str, Any]],
) -> list[uuid.UUID]:
    # The identity carries the version guard; its customer follows only if it moved.
    identity_update = guarded_upsert(
        session,
        _IDENTITY,
        keys=("shop_id", "connection_id", "external_id"),
        update=("email", "email_hash", "phone_hash", "email_masked", "source_updated_at"),
        guard="source_updated_at",
    ).returning(_IDENTITY.c.customer_id)
    updated: list[uuid.UUID] = await returning_many(session, identity_update, identities)
    customer_update = guarded_upsert(
        session,
        _CUSTOMER,
        keys=("shop_id", "id"),
        update=("display_name", "email", "phone", "birth_date", "created_at", "updated_at"),
    )
    await execute_many(session, customer_update, [customers[i] for i in updated])
    return updated
