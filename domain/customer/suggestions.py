"""The shop's open merge suggestions: identities whose contact data now matches another customer.

Ingest writes a suggestion into an identity's `merge_evidence` instead of moving it (see
`domain.ingest.linking`); it stays open until staff merge the two customers (the suggested
customer is then the identity's own, or is gone). Listed by identity, oldest first, in keyset
pages; settled suggestions are skipped in Python, reading on until a page is full.
"""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from domain.customer.evidence import Suggestion, suggestion_of
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import fetch_all, table_of
from domain.pagination import (
    FETCH,
    Page,
    PageRequest,
    Position,
    SortColumn,
    beyond_cursor,
    order_by,
    page_parameters,
    to_page,
)

_CUSTOMER = table_of(Customer)
_IDENTITY = table_of(CustomerIdentity)
# Candidates read per round beyond the page: most suggestions are open, few rounds are needed.
_ROUND = 200

SUGGESTION_SORT = SortColumn("created_at", _IDENTITY.c.created_at, datetime)


@dataclass(frozen=True, slots=True)
class SuggestionRow:
    """An identity (`id`) of `customer_id` with its open suggestion."""

    id: uuid.UUID
    created_at: datetime
    customer_id: uuid.UUID
    suggestion: Suggestion


def _candidates(shop_id: ShopId) -> Select[Any]:
    identity = _IDENTITY.c
    suggested = identity.merge_evidence["suggested"]["customer_id"].as_string()
    return select(
        identity.id, identity.created_at, identity.customer_id, identity.merge_evidence
    ).where(identity.shop_id == shop_id, suggested.is_not(None))


async def _open(session: AsyncSession, shop_id: ShopId, rows: list[Any]) -> list[SuggestionRow]:
    found = [
        (row, suggestion)
        for row in rows
        if (suggestion := suggestion_of(row.merge_evidence, row.customer_id)) is not None
    ]
    wanted = list({suggestion.customer_id for _, suggestion in found})
    existing: set[uuid.UUID] = set()
    if wanted:
        statement = select(_CUSTOMER.c.id).where(
            _CUSTOMER.c.shop_id == shop_id, _CUSTOMER.c.id.in_(wanted)
        )
        existing = {row.id for row in await fetch_all(session, statement)}
    return [
        SuggestionRow(row.id, row.created_at, row.customer_id, suggestion)
        for row, suggestion in found
        if suggestion.customer_id in existing
    ]


async def list_merge_suggestions(
    session: AsyncSession, shop_id: ShopId, request: PageRequest
) -> Page[SuggestionRow]:
    """One page of the shop's open suggestions, by identity creation (then id)."""
    identity = _IDENTITY.c
    wanted = request.size + 1
    kept: list[SuggestionRow] = []
    current = request
    connection = await session.connection()
    while len(kept) < wanted:
        shape = current.shape
        statement = (
            _candidates(shop_id)
            .where(beyond_cursor(SUGGESTION_SORT, identity.id, shape))
            .order_by(*order_by(SUGGESTION_SORT, identity.id, shape))
            .limit(_ROUND)
        )
        parameters = page_parameters(SUGGESTION_SORT, current)
        parameters.pop(FETCH)
        rows = list((await connection.execute(statement, parameters)).all())
        kept += await _open(session, shop_id, rows)
        if len(rows) < _ROUND:
            break
        last = rows[-1]
        current = replace(current, cursor=Position(last.created_at, last.id))
    return to_page(kept[:wanted], request)


async def count_merge_suggestions(session: AsyncSession, shop_id: ShopId) -> int:
    """How many open suggestions `list_merge_suggestions` pages through."""
    rows = list(await fetch_all(session, _candidates(shop_id)))
    return len(await _open(session, shop_id, rows))
