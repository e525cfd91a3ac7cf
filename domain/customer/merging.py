"""Staff merges of two customers of a shop, and their exact undoing.

A merge moves everything of the absorbed customer to the survivor: identities, orders,
subscriptions, consents, enrollments, messages, tasks; keeps the absorbed customer's own row,
current risk score and whatever could not move (a consent the survivor also holds) in the
`customer_merge` row, and deletes the absorbed customer. An unmerge re-creates the absorbed
customer under its own id, gives back its identities and every order and subscription bought
through them (also those ingested after the merge) and what else moved, and recomputes both
customers' aggregates. Merges chain: a survivor may absorb several customers, and a survivor
that is absorbed in turn hands its merges on to its own survivor, so each stays undoable.
"""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python
from sqlalchemy import delete, insert, or_, select, update
from sqlmodel import col
from sqlmodel import select as select_models

from domain.audit.models import AuditLog
from domain.customer.belongings import (
    BOUGHT,
    MOVED_BY_ID,
    check_enrollments,
    decode_row,
    encode_row,
    ids_where,
    merge_consents,
    move_rows,
    restore_consents,
    restore_risk_score,
    take_risk_score,
)
from domain.customer.models import Customer, CustomerIdentity, CustomerMerge
from domain.db import AsyncSession
from domain.errors import (
    CustomerAlreadyMerged,
    CustomerNotFound,
    MergeAlreadyUndone,
    MergeNotFound,
    MergeWithItself,
)
from domain.ids import CustomerId, ShopId
from domain.ingest.aggregates import recompute_customer_aggregates
from domain.ingest.statements import fetch_all, table_of
from domain.jobs import Jobs
from domain.risk.schedule import request_rescore
from domain.shop.models import Shop

_CUSTOMER = table_of(Customer)
_IDENTITY = table_of(CustomerIdentity)
_MERGE = table_of(CustomerMerge)

MERGED = "merged"


async def _customer_row(
    session: AsyncSession, shop_id: ShopId, customer_id: uuid.UUID, field: str
) -> dict[str, Any]:
    statement = select(_CUSTOMER).where(
        _CUSTOMER.c.shop_id == shop_id, _CUSTOMER.c.id == customer_id
    )
    found = await fetch_all(session, statement)
    if found:
        return dict(found[0]._mapping)
    merged = select(_MERGE.c.survivor_id).where(
        _MERGE.c.shop_id == shop_id,
        _MERGE.c.absorbed_id == customer_id,
        _MERGE.c.unmerged_at.is_(None),
    )
    if await fetch_all(session, merged):
        raise CustomerAlreadyMerged(
            "this customer was merged into another one; unmerge it first", field=field
        )
    raise CustomerNotFound("no such customer", field=field)


async def _own_created_at(
    session: AsyncSession, shop_id: ShopId, survivor: Mapping[str, Any]
) -> str:
    """When the survivor became a customer before any merge still in force moved it back."""
    statement = (
        select(_MERGE.c.evidence)
        .where(
            _MERGE.c.shop_id == shop_id,
            _MERGE.c.survivor_id == survivor["id"],
            _MERGE.c.unmerged_at.is_(None),
        )
        .order_by(_MERGE.c.merged_at, _MERGE.c.id)
        .limit(1)
    )
    found = await fetch_all(session, statement)
    if found and "survivor_created_at" in found[0][0]:
        recorded: str = found[0][0]["survivor_created_at"]
        return recorded
    return str(to_jsonable_python(survivor["created_at"]))


async def merge_customers(
    session: AsyncSession,
    shop_id: ShopId,
    survivor_id: uuid.UUID,
    absorbed_id: uuid.UUID,
    *,
    actor: str,
    now: datetime,
    jobs: Jobs | None = None,
) -> CustomerMerge:
    """Move everything of `absorbed_id` to `survivor_id` and delete the absorbed customer.

    Raises `MergeWithItself`, `CustomerNotFound` (also for other shops' ids),
    `CustomerAlreadyMerged` (an id absorbed earlier) and `MergeBlocked` (both enrolled in one
    campaign cycle). Audited; the survivor's aggregates are recomputed and, with `jobs`, its
    risk rescored. Flushes, never commits.
    """
    if survivor_id == absorbed_id:
        raise MergeWithItself("a customer cannot absorb itself", field="absorbed_id")
    # Both rows locked in one order: a concurrent merge of either waits, then finds it gone.
    await fetch_all(
        session,
        select(_CUSTOMER.c.id)
        .where(_CUSTOMER.c.shop_id == shop_id, _CUSTOMER.c.id.in_([survivor_id, absorbed_id]))
        .order_by(_CUSTOMER.c.id)
        .with_for_update(),
    )
    survivor = await _customer_row(session, shop_id, survivor_id, "survivor_id")
    absorbed = await _customer_row(session, shop_id, absorbed_id, "absorbed_id")
    await check_enrollments(session, shop_id, survivor_id, absorbed_id)

    identity = _IDENTITY.c
    identities = await fetch_all(
        session,
        select(identity.id, identity.merge_evidence)
        .where(identity.shop_id == shop_id, identity.customer_id == absorbed_id)
        .order_by(identity.created_at, identity.id),
    )
    identity_ids = [identity_id for identity_id, _ in identities]
    merge = CustomerMerge(
        shop_id=shop_id,
        survivor_id=survivor_id,
        absorbed_id=absorbed_id,
        identity_ids=[str(identity_id) for identity_id in identity_ids],
        merged_at=now,
    )
    snapshot: dict[str, Any] = {
        "customer": encode_row(absorbed),
        "identity_evidence": {str(i): evidence.get(MERGED) for i, evidence in identities},
    }
    evidence: dict[str, Any] = {
        "kind": "staff",
        "actor": actor,
        "survivor_created_at": await _own_created_at(session, shop_id, survivor),
    }
    marker = {"merge_id": str(merge.id), "into": str(survivor_id), "at": now.isoformat()}
    for identity_id, old in identities:
        await session.exec(
            update(_IDENTITY)
            .where(identity.shop_id == shop_id, identity.id == identity_id)
            .values(customer_id=survivor_id, merge_evidence={**old, MERGED: marker})
        )
    for name, table in BOUGHT.items():
        # Rows whose buyer is unknown go back by id; the rest follow their identity.
        snapshot[name] = [
            str(row_id)
            for row_id in await ids_where(
                session,
                table,
                table.c.shop_id == shop_id,
                table.c.customer_id == absorbed_id,
                or_(table.c.identity_id.is_(None), table.c.identity_id.not_in(identity_ids)),
            )
        ]
        await move_rows(session, shop_id, table, absorbed_id, survivor_id)
    await merge_consents(session, shop_id, survivor_id, absorbed_id, snapshot)
    moved: dict[str, list[str]] = {}
    for name, table in MOVED_BY_ID.items():
        ids = await ids_where(
            session, table, table.c.shop_id == shop_id, table.c.customer_id == absorbed_id
        )
        moved[name] = [str(row_id) for row_id in ids]
        await move_rows(session, shop_id, table, absorbed_id, survivor_id)
    snapshot["moved"] = moved
    snapshot["risk_score"] = await take_risk_score(session, shop_id, absorbed_id)
    snapshot["repointed"] = await _repoint(session, shop_id, absorbed_id, survivor_id, evidence)
    await session.exec(
        delete(_CUSTOMER).where(_CUSTOMER.c.shop_id == shop_id, _CUSTOMER.c.id == absorbed_id)
    )
    merge.snapshot = snapshot
    merge.evidence = evidence
    session.add(merge)
    session.add(
        AuditLog(
            shop_id=shop_id,
            actor=actor,
            action="customer.merge",
            target=f"customer:{survivor_id}",
            detail={"merge_id": str(merge.id), "absorbed_id": str(absorbed_id)},
            occurred_at=now,
        )
    )
    await session.flush()
    await _recompute(session, shop_id, [survivor_id])
    if jobs is not None:
        request_rescore(jobs, shop_id, [CustomerId(survivor_id)])
    return merge


async def _repoint(
    session: AsyncSession,
    shop_id: ShopId,
    absorbed_id: uuid.UUID,
    survivor_id: uuid.UUID,
    evidence: Mapping[str, Any],
) -> dict[str, Any]:
    """Hand the absorbed customer's own merges in force on to the survivor; their old
    evidence, by merge id, for the unmerge."""
    rows = await fetch_all(
        session,
        select(_MERGE.c.id, _MERGE.c.evidence).where(
            _MERGE.c.shop_id == shop_id,
            _MERGE.c.survivor_id == absorbed_id,
            _MERGE.c.unmerged_at.is_(None),
        ),
    )
    for merge_id, old in rows:
        await session.exec(
            update(_MERGE)
            .where(_MERGE.c.shop_id == shop_id, _MERGE.c.id == merge_id)
            .values(
                survivor_id=survivor_id,
                evidence={**old, "survivor_created_at": evidence["survivor_created_at"]},
            )
        )
    return {str(merge_id): old for merge_id, old in rows}


async def _recompute(
    session: AsyncSession, shop_id: ShopId, customer_ids: Sequence[uuid.UUID]
) -> None:
    currency = (await session.get_one(Shop, shop_id)).currency
    await recompute_customer_aggregates(session, shop_id, customer_ids, currency=currency)


async def unmerge_customer(
    session: AsyncSession,
    shop_id: ShopId,
    merge_id: uuid.UUID,
    *,
    actor: str,
    now: datetime,
    jobs: Jobs | None = None,
) -> CustomerMerge:
    """Undo a merge: the absorbed customer comes back under its id with its own fields, its
    identities and every order and subscription bought through them (also those ingested
    since), and what else moved. Both customers' aggregates are recomputed and, with `jobs`,
    both rescored. Raises `MergeNotFound` (also for other shops' ids) and `MergeAlreadyUndone`.
    Audited; flushes, never commits.
    """
    statement = (
        select_models(CustomerMerge)
        .where(col(CustomerMerge.shop_id) == shop_id, col(CustomerMerge.id) == merge_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    merge = (await session.exec(statement)).first()
    if merge is None:
        raise MergeNotFound("no such merge", field="merge_id")
    if merge.unmerged_at is not None:
        raise MergeAlreadyUndone("this merge was undone already", field="merge_id")
    survivor_id, absorbed_id, snapshot = merge.survivor_id, merge.absorbed_id, merge.snapshot
    restored = decode_row(Customer, snapshot["customer"])
    restored["updated_at"] = now
    await session.exec(insert(_CUSTOMER).values(**restored))

    identity = _IDENTITY.c
    identities = await fetch_all(
        session,
        select(identity.id, identity.merge_evidence).where(
            identity.shop_id == shop_id,
            identity.customer_id == survivor_id,
            identity.id.in_([uuid.UUID(i) for i in merge.identity_ids]),
        ),
    )
    identity_ids = [identity_id for identity_id, _ in identities]
    for identity_id, current in identities:
        evidence = {key: value for key, value in current.items() if key != MERGED}
        old = snapshot["identity_evidence"].get(str(identity_id))
        if old is not None:
            evidence[MERGED] = old
        await session.exec(
            update(_IDENTITY)
            .where(identity.shop_id == shop_id, identity.id == identity_id)
            .values(customer_id=absorbed_id, merge_evidence=evidence)
        )
    for name, table in BOUGHT.items():
        ids = [uuid.UUID(row_id) for row_id in snapshot[name]]
        await move_rows(
            session,
            shop_id,
            table,
            survivor_id,
            absorbed_id,
            or_(table.c.identity_id.in_(identity_ids), table.c.id.in_(ids)),
        )
    for name, table in MOVED_BY_ID.items():
        ids = [uuid.UUID(row_id) for row_id in snapshot["moved"][name]]
        await move_rows(session, shop_id, table, survivor_id, absorbed_id, table.c.id.in_(ids))
    await restore_consents(session, shop_id, snapshot)
    await restore_risk_score(session, snapshot["risk_score"])
    for repointed_id, old in snapshot["repointed"].items():
        await session.exec(
            update(_MERGE)
            .where(_MERGE.c.shop_id == shop_id, _MERGE.c.id == uuid.UUID(repointed_id))
            .values(survivor_id=absorbed_id, evidence=old)
        )
    own = TypeAdapter(datetime).validate_python(merge.evidence["survivor_created_at"])
    await session.exec(
        update(_CUSTOMER)
        .where(_CUSTOMER.c.shop_id == shop_id, _CUSTOMER.c.id == survivor_id)
        .values(created_at=own)
    )
    merge.unmerged_at = now
    session.add(
        AuditLog(
            shop_id=shop_id,
            actor=actor,
            action="customer.unmerge",
            target=f"customer:{absorbed_id}",
            detail={"merge_id": str(merge.id), "survivor_id": str(survivor_id)},
            occurred_at=now,
        )
    )
    await session.flush()
    await _recompute(session, shop_id, [survivor_id, absorbed_id])
    if jobs is not None:
        request_rescore(jobs, shop_id, [CustomerId(survivor_id), CustomerId(absorbed_id)])
    return merge
