"""Linking identities to customers by normalised email and phone hashes, within one shop.

A new identity whose email or phone hash equals one of an existing identity of the shop joins
that identity's customer; when several customers match, the oldest (created_at, then id) wins
and the others are named in the evidence. New identities of one batch that share a hash join
one customer. An existing identity whose contact data changes to match another customer is
never moved here: it gets a merge suggestion for staff instead (see `domain.customer.merging`).

Evidence, stored in `customer_identity.merge_evidence`:

    linked:     {"matched": "email"|"phone", "identity_id", "customer_id", "at",
                 "candidates": [other customer ids] (only when ambiguous)}
    suggested:  {"suggested": {"customer_id", "matched", "identity_id", "at"}}
"""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ingest.context import IngestContext
from domain.ingest.statements import KEY_CHUNK, fetch_all, one_of, table_of

_CUSTOMER = table_of(Customer)
_IDENTITY = table_of(CustomerIdentity)

EMAIL = "email"
PHONE = "phone"
SUGGESTED = "suggested"


@dataclass(frozen=True, slots=True)
class Contact:
    """The hashes an identity is matched on; None for none (masked, malformed, absent)."""

    email_hash: str | None
    phone_hash: str | None

    def hashes(self) -> Iterable[tuple[str, str]]:
        if self.email_hash is not None:
            yield EMAIL, self.email_hash
        if self.phone_hash is not None:
            yield PHONE, self.phone_hash


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored identity that shares a hash with an incoming one."""

    identity_id: uuid.UUID
    customer_id: uuid.UUID
    contact: Contact
    customer_created_at: datetime
    identity_created_at: datetime


@dataclass(frozen=True, slots=True)
class Newcomer:
    """An identity about to be created: its key in the batch, its new id and its hashes."""

    key: str
    identity_id: uuid.UUID
    contact: Contact


@dataclass(frozen=True, slots=True)
class Link:
    """Where a newcomer goes: an existing customer, or the new customer of `leader`."""

    customer_id: uuid.UUID | None
    leader: str
    evidence: dict[str, Any]


class Candidates:
    """Stored identities by the hashes they carry."""

    def __init__(self, found: Iterable[Candidate]) -> None:
        self._by_hash: dict[tuple[str, str], list[Candidate]] = {}
        for candidate in found:
            for kind_hash in candidate.contact.hashes():
                self._by_hash.setdefault(kind_hash, []).append(candidate)
        for candidates in self._by_hash.values():
            candidates.sort(key=lambda c: (c.identity_created_at, c.identity_id))

    def has(self, kind_hash: tuple[str, str]) -> bool:
        return kind_hash in self._by_hash

    def matching(self, contact: Contact) -> list[tuple[str, Candidate]]:
        """(kind, stored identity) for each hash of `contact`, email matches first."""
        return [
            (kind, candidate)
            for kind, value in contact.hashes()
            for candidate in self._by_hash.get((kind, value), ())
        ]


async def find_candidates(
    session: AsyncSession, context: IngestContext, contacts: Iterable[Contact]
) -> Candidates:
    """Stored identities of the shop sharing an email or phone hash with `contacts`.

    One query per chunk of hashes, through the (shop, email_hash) and (shop, phone_hash)
    indexes.
    """
    wanted = sorted({kind_hash for contact in contacts for kind_hash in contact.hashes()})
    found: dict[uuid.UUID, Candidate] = {}
    identity, customer = _IDENTITY.c, _CUSTOMER.c
    for start in range(0, len(wanted), KEY_CHUNK):
        chunk = wanted[start : start + KEY_CHUNK]
        emails = [value for kind, value in chunk if kind == EMAIL]
        phones = [value for kind, value in chunk if kind == PHONE]
        conditions = []
        if emails:
            conditions.append(one_of(session, identity.email_hash, emails))
        if phones:
            conditions.append(one_of(session, identity.phone_hash, phones))
        statement = (
            select(
                identity.id,
                identity.customer_id,
                identity.email_hash,
                identity.phone_hash,
                customer.created_at,
                identity.created_at,
            )
            .join_from(
                _IDENTITY,
                _CUSTOMER,
                (customer.shop_id == identity.shop_id) & (customer.id == identity.customer_id),
            )
            .where(identity.shop_id == context.shop_id, or_(*conditions))
        )
        for row in await fetch_all(session, statement):
            identity_id, customer_id, email_hash, phone_hash, customer_at, identity_at = row
            found[identity_id] = Candidate(
                identity_id, customer_id, Contact(email_hash, phone_hash), customer_at, identity_at
            )
    return Candidates(found.values())


def _oldest_customer(matches: Iterable[Candidate]) -> list[uuid.UUID]:
    """Distinct customers of `matches`, oldest first."""
    seen: dict[uuid.UUID, tuple[datetime, uuid.UUID]] = {}
    for candidate in matches:
        seen[candidate.customer_id] = (candidate.customer_created_at, candidate.customer_id)
    return [customer_id for _, customer_id in sorted(seen.values())]


def _groups(newcomers: Sequence[Newcomer]) -> list[list[Newcomer]]:
    """Newcomers connected through shared hashes, each group in the given order."""
    parent = list(range(len(newcomers)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_with: dict[tuple[str, str], int] = {}
    for index, newcomer in enumerate(newcomers):
        for kind_hash in newcomer.contact.hashes():
            other = first_with.setdefault(kind_hash, index)
            a, b = root(index), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[Newcomer]] = {}
    for index, newcomer in enumerate(newcomers):
        groups.setdefault(root(index), []).append(newcomer)
    return list(groups.values())


def _evidence(
    kind: str, identity_id: uuid.UUID, customer_id: uuid.UUID | None, at: datetime
) -> dict[str, Any]:
    evidence = {"matched": kind, "identity_id": str(identity_id), "at": at.isoformat()}
    if customer_id is not None:
        # A group's new customer gets its id later, from the caller.
        evidence["customer_id"] = str(customer_id)
    return evidence


def link_newcomers(
    newcomers: Sequence[Newcomer], candidates: Candidates, now: datetime
) -> dict[str, Link]:
    """Where each newcomer with a hash goes; newcomers without one are not in the answer.

    A group of newcomers sharing hashes joins the oldest stored customer any of them matches;
    with none, the group's first newcomer (the leader) makes a new customer the rest join.
    """
    links: dict[str, Link] = {}
    for group in _groups(_linkable(newcomers, candidates)):
        matches = {n.key: candidates.matching(n.contact) for n in group}
        customers = _oldest_customer(c for found in matches.values() for _, c in found)
        target = customers[0] if customers else None
        leader = group[0].key
        for newcomer in group:
            direct = [(k, c) for k, c in matches[newcomer.key] if c.customer_id == target]
            if direct:
                kind, candidate = direct[0]
                evidence = _evidence(kind, candidate.identity_id, candidate.customer_id, now)
            elif target is None and newcomer.key == leader:
                links[newcomer.key] = Link(None, leader, {})
                continue
            else:
                # Joined through a group mate that shares one of its hashes.
                kind, mate = _mate(newcomer, group)
                evidence = _evidence(kind, mate.identity_id, target, now)
            if len(customers) > 1:
                evidence["candidates"] = [str(other) for other in customers[1:]]
            links[newcomer.key] = Link(target, leader, evidence)
    return links


def _linkable(newcomers: Sequence[Newcomer], candidates: Candidates) -> list[Newcomer]:
    """Newcomers sharing a hash with a stored identity or another newcomer (most share none)."""
    seen: set[tuple[str, str]] = set()
    shared: set[tuple[str, str]] = set()
    for newcomer in newcomers:
        for kind_hash in newcomer.contact.hashes():
            if kind_hash in seen or candidates.has(kind_hash):
                shared.add(kind_hash)
            seen.add(kind_hash)
    return [n for n in newcomers if any(h in shared for h in n.contact.hashes())]


def _mate(newcomer: Newcomer, group: Sequence[Newcomer]) -> tuple[str, Newcomer]:
    own = dict(newcomer.contact.hashes())
    for mate in group:
        if mate is newcomer:
            continue
        for kind, value in mate.contact.hashes():
            if own.get(kind) == value:
                return kind, mate
    raise AssertionError("a group member shares no hash with any other member")


def suggestion(
    customer_id: uuid.UUID, contact: Contact, candidates: Candidates, now: datetime
) -> dict[str, Any] | None:
    """A merge suggestion for a stored identity of `customer_id` whose hashes now match another
    customer's identity (the oldest such customer); None when none matches."""
    others = [(k, c) for k, c in candidates.matching(contact) if c.customer_id != customer_id]
    if not others:
        return None
    target = _oldest_customer(c for _, c in others)[0]
    kind, candidate = next((k, c) for k, c in others if c.customer_id == target)
    return {
        "customer_id": str(target),
        "matched": kind,
        "identity_id": str(candidate.identity_id),
        "at": now.isoformat(),
    }


def with_suggestion(
    evidence: Mapping[str, Any], suggested: dict[str, Any] | None
) -> dict[str, Any]:
    """`evidence` with its suggestion replaced by `suggested` (removed for None)."""
    updated = {key: value for key, value in evidence.items() if key != SUGGESTED}
    if suggested is not None:
        updated[SUGGESTED] = suggested
    return updated
