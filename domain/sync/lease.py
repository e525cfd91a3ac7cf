"""One sync per connection at a time: a lease on the connection row, taken atomically.

The lease is the time it runs until. Every stored page renews it on the condition that it
still holds the value this sync wrote, so that value is the sync's token: a sync whose lease
expired and was taken by another (it looked dead) finds out at its next page and stops.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, or_, update

from domain.connection.models import Connection, ConnectionStatus
from domain.db import AsyncSession
from domain.ids import ShopId

_TABLE: Table = Connection.__table__  # type: ignore[attr-defined]
_C = _TABLE.c


class LeaseLost(Exception):
    """Another sync took the connection, or it was disconnected, while this one ran."""


@dataclass(frozen=True, slots=True)
class Lease:
    shop_id: ShopId
    connection_id: uuid.UUID
    until: datetime


async def acquire_lease(
    session: AsyncSession,
    shop_id: ShopId,
    connection_id: uuid.UUID,
    *,
    now: datetime,
    seconds: int,
) -> Lease | None:
    """Take the lease of an ACTIVE connection that nobody holds (or whose holder expired).

    None when another sync holds it or the connection is not ACTIVE. Commit before syncing.
    """
    until = now + timedelta(seconds=seconds)
    result = await session.exec(
        update(_TABLE)
        .where(
            _C.shop_id == shop_id,
            _C.id == connection_id,
            _C.status == ConnectionStatus.ACTIVE.value,
            or_(_C.sync_lease_until.is_(None), _C.sync_lease_until < now),
        )
        .values(sync_lease_until=until)
    )
    return Lease(shop_id, connection_id, until) if result.rowcount == 1 else None


async def renew_lease(
    session: AsyncSession, lease: Lease, *, now: datetime, seconds: int, **values: object
) -> Lease:
    """Extend the lease while still holding it, writing `values` to the connection with it.

    Raises `LeaseLost` when the lease is no longer this sync's.
    """
    until = max(now + timedelta(seconds=seconds), lease.until + timedelta(microseconds=1))
    result = await session.exec(
        update(_TABLE)
        .where(
            _C.shop_id == lease.shop_id,
            _C.id == lease.connection_id,
            _C.sync_lease_until == lease.until,
        )
        .values(sync_lease_until=until, **values)
    )
    if result.rowcount != 1:
        raise LeaseLost(f"connection {lease.connection_id} is no longer leased to this sync")
    return Lease(lease.shop_id, lease.connection_id, until)


async def release_lease(session: AsyncSession, lease: Lease, **values: object) -> bool:
    """Free the connection (if still this sync's), writing `values` with it; whether it was."""
    result = await session.exec(
        update(_TABLE)
        .where(
            _C.shop_id == lease.shop_id,
            _C.id == lease.connection_id,
            _C.sync_lease_until == lease.until,
        )
        .values(sync_lease_until=None, **values)
    )
    return bool(result.rowcount == 1)
