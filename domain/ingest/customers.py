"""Customers and their identities: one identity per (connection, external id); a new identity
joins the shop's customer it shares an email or phone hash with, or makes a new customer
(see `domain.ingest.linking`); contact data is normalised and hashed on the way in.

A customer's own fields (name, phone, birth date) follow its primary identity, the one that
made it. Identities that joined later (linked at ingest or merged by staff) update only
themselves, so two malls' versions of a person never overwrite each other on every sync.
"""

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
from domain.ingest.linking import (
    Contact,
    Newcomer,
    find_candidates,
    link_newcomers,
    suggestion,
    with_suggestion,
)
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


# Keys of `merge_evidence` that mark an identity as not its customer's primary one.
SECONDARY_MARKERS = ("matched", "merged")


@dataclass(frozen=True, slots=True)
class NewCustomers:
    """Rows of the customers and identities first met in a batch, written by
    `insert_new_customers` once the batch's orders are planned: a new customer's row then
    carries its order aggregates from the start instead of being updated after its orders."""

    customers: list[dict[str, Any]]
    identities: list[dict[str, Any]]


async def insert_new_customers(session: AsyncSession, new: NewCustomers) -> None:
    await insert_rows(session, _CUSTOMER, new.customers)
    await insert_rows(session, _IDENTITY, new.identities)


@dataclass(frozen=True, slots=True)
class Buyer:
    """Who an order or subscription belongs to: the customer and the identity that bought."""

    customer_id: uuid.UUID
    identity_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class _Stored:
    identity_id: uuid.UUID
    customer_id: uuid.UUID
    values: tuple[Any, ...]
    source_updated_at: datetime | None
    created_at: datetime
    evidence: dict[str, Any]

    @property
    def primary(self) -> bool:
        return not any(marker in self.evidence for marker in SECONDARY_MARKERS)

    @property
    def contact(self) -> Contact:
        return Contact(self.values[2], self.values[5])


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

    @property
    def contact(self) -> Contact:
        return Contact(self.email_hash, self.phone_hash)

    def identity_values(self) -> tuple[Any, ...]:
        """What an identity stores itself (see `_identity_values`)."""
        return (self.email, self.email_hash, self.email_masked, self.phone_hash)

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
                identity.merge_evidence,
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
            external_id, identity_id, customer_id, updated_at, *values, created_at, evidence = row
            stored[external_id] = _Stored(
                identity_id, customer_id, tuple(values), updated_at, created_at, evidence or {}
            )
    return stored


def _identity_values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """email, email_hash, email_masked, phone_hash out of a stored values tuple."""
    return (values[1], values[2], values[3], values[5])


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
        "first_product_id": None,
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
    *,
    identity_id: uuid.UUID,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    return {
        "shop_id": context.shop_id,
        "id": identity_id,
        "customer_id": customer_id,
        "connection_id": context.connection_id,
        "platform": context.platform,
        "external_id": external_id,
        "email": profile.email,
        "email_hash": profile.email_hash,
        "phone_hash": profile.phone_hash,
        "email_masked": profile.email_masked,
        "merge_evidence": evidence,
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
) -> tuple[dict[str, Buyer], Counts, NewCustomers]:
    """The buyer (customer and identity) of every record and referenced external id, and the
    rows of new customers and identities, which the caller writes (`insert_new_customers`).

    `referenced` maps external ids that orders or subscriptions point at to their earliest
    time; unknown ones become bare customers, created at that time (and counted as inserted).
    New identities are linked by contact hashes (see `domain.ingest.linking`); stored ones
    whose hashes change get a merge suggestion when they now match another customer.
    """
    newest = newest_by_key((record.external_id, record) for record in records)
    wanted = sorted(newest.keys() | referenced.keys())
    stored = await _load(session, context, wanted)
    buyers = {key: Buyer(found.customer_id, found.identity_id) for key, found in stored.items()}

    newcomers: list[tuple[Newcomer, _Profile, CustomerRecord | None]] = []
    changed: list[tuple[_Stored, _Profile, CustomerRecord]] = []
    unchanged = 0
    for external_id in wanted:
        record = newest.get(external_id)
        profile = _Profile.of(record) if record is not None else _EMPTY
        found = stored.get(external_id)
        if found is None:
            newcomers.append((Newcomer(external_id, new_id(), profile.contact), profile, record))
        elif record is None:
            continue
        elif _is_unchanged(found, profile, record):
            unchanged += 1
        else:
            changed.append((found, profile, record))

    rechecked = [(f, p) for f, p, _ in changed if p.contact != f.contact]
    contacts = [n.contact for n, _, _ in newcomers] + [p.contact for _, p in rechecked]
    candidates = await find_candidates(session, context, contacts)
    links = link_newcomers([n for n, _, _ in newcomers], candidates, context.now)

    new_customers: list[dict[str, Any]] = []
    new_identities: list[dict[str, Any]] = []
    joined: set[uuid.UUID] = set()
    for newcomer, profile, record in newcomers:
        link = links.get(newcomer.key)
        evidence = dict(link.evidence) if link is not None else {}
        if link is not None and link.customer_id is not None:
            customer_id = link.customer_id
            joined.add(customer_id)
        elif link is not None and link.leader != newcomer.key:
            customer_id = buyers[link.leader].customer_id
            evidence["customer_id"] = str(customer_id)
        else:
            customer_id = new_id()
            created_at = (record.created_at if record else None) or referenced.get(
                newcomer.key, context.now
            )
            new_customers.append(_customer_row(context, customer_id, profile, created_at))
        buyers[newcomer.key] = Buyer(customer_id, newcomer.identity_id)
        new_identities.append(
            _identity_row(
                context,
                customer_id,
                newcomer.key,
                profile,
                record.source_updated_at if record else None,
                identity_id=newcomer.identity_id,
                evidence=evidence,
            )
        )

    suggestions = {
        found.identity_id: suggestion(found.customer_id, profile.contact, candidates, context.now)
        for found, profile in rechecked
    }
    changed_customers: dict[uuid.UUID, dict[str, Any]] = {}
    changed_identities: list[dict[str, Any]] = []
    for found, profile, record in changed:
        evidence = found.evidence
        if found.identity_id in suggestions:
            evidence = with_suggestion(evidence, suggestions[found.identity_id])
        if found.primary:
            changed_customers[found.customer_id] = _customer_row(
                context, found.customer_id, profile, record.created_at or found.created_at
            )
        changed_identities.append(
            _identity_row(
                context,
                found.customer_id,
                record.external_id,
                profile,
                record.source_updated_at,
                identity_id=found.identity_id,
                evidence=evidence,
            )
        )

    updated = await _apply_updates(session, changed_customers, changed_identities)
    touched.add(row["id"] for row in new_customers)
    touched.add(joined)
    touched.add(updated)
    counts = Counts(
        inserted=len(new_identities),
        updated=len(updated),
        unchanged=unchanged + len(changed_identities) - len(updated),
    )
    return buyers, counts, NewCustomers(new_customers, new_identities)


def _is_unchanged(found: _Stored, profile: _Profile, record: CustomerRecord) -> bool:
    """Whether the record would change nothing: older, or the same as what is stored.

    A secondary identity stores only its contact data; the customer's own fields are its
    primary identity's.
    """
    if is_older(record.source_updated_at, found.source_updated_at):
        return True
    if found.source_updated_at != record.source_updated_at:
        return False
    if not found.primary:
        return _identity_values(found.values) == profile.identity_values()
    created_at = record.created_at or found.created_at
    if found.values != profile.values():
        return False
    if found.source_updated_at is not None:
        # This very version was stored before; a stored creation time earlier than its own
        # is the customer's first purchase (aggregates move it back), not a change.
        return found.created_at <= created_at
    return found.created_at == created_at


async def _apply_updates(
    session: AsyncSession,
    customers: Mapping[uuid.UUID, Mapping[str, Any]],
    identities: Sequence[Mapping[str, Any]],
) -> list[uuid.UUID]:
    """The customer of each identity that changed (one entry per identity); a customer row
    follows only its primary identity."""
    # The identity carries the version guard; its customer follows only if it moved.
    identity_update = guarded_upsert(
        session,
        _IDENTITY,
        keys=("shop_id", "connection_id", "external_id"),
        update=(
            "email",
            "email_hash",
            "phone_hash",
            "email_masked",
            "merge_evidence",
            "source_updated_at",
        ),
        guard="source_updated_at",
    ).returning(_IDENTITY.c.customer_id)
    updated: list[uuid.UUID] = await returning_many(session, identity_update, identities)
    customer_update = guarded_upsert(
        session,
        _CUSTOMER,
        keys=("shop_id", "id"),
        update=("display_name", "email", "phone", "birth_date", "created_at", "updated_at"),
    )
    await execute_many(
        session, customer_update, [customers[i] for i in dict.fromkeys(updated) if i in customers]
    )
    return updated
