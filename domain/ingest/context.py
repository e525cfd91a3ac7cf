"""What every step of one ingest call shares: the tenant, the connection, the clock, the tallies."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from domain.ids import ConnectionId, CustomerId, ShopId


@dataclass(frozen=True, slots=True)
class Counts:
    """What an upsert did to the rows it was given."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


@dataclass(frozen=True, slots=True)
class IngestContext:
    shop_id: ShopId
    connection_id: ConnectionId
    platform: str
    # The shop's currency: customer totals add up orders in this currency only.
    currency: str
    now: datetime


@dataclass(slots=True)
class Touched:
    """Customers whose data changed, and those of them whose order aggregates are stale."""

    customers: set[CustomerId] = field(default_factory=set)
    aggregates: set[CustomerId] = field(default_factory=set)

    def add(self, ids: Iterable[uuid.UUID], *, orders: bool = False) -> None:
        for customer_id in ids:
            self.customers.add(CustomerId(customer_id))
            if orders:
                self.aggregates.add(CustomerId(customer_id))


class _Versioned(Protocol):
    @property
    def source_updated_at(self) -> datetime | None: ...


V = TypeVar("V", bound=_Versioned)


def newest_by_key(records: Iterable[tuple[str, V]]) -> dict[str, V]:
    """One record per key: the newest by `source_updated_at`, the later one on a tie.

    PostgreSQL refuses to touch one row twice in a statement, and a batch may well carry two
    versions of one order.
    """
    kept: dict[str, V] = {}
    for key, record in records:
        current = kept.get(key)
        if current is None or not is_older(record.source_updated_at, current.source_updated_at):
            kept[key] = record
    return kept


def is_older(incoming: datetime | None, stored: datetime | None) -> bool:
    """Whether `incoming` must not replace `stored`: the stored version is known to be newer.

    An unknown incoming time never replaces a known stored one; an unknown stored time is
    always replaced.
    """
    if stored is None:
        return False
    return incoming is None or incoming < stored
