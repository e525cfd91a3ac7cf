"""Keyset pagination: pages of a sorted listing that stay stable while rows are added.

A listing is sorted by one column then by `id` (the tie-breaker), so every row has a unique
`Position`. A page asks for `size` rows after (or, backward, before) a position. NULLs of a
nullable sort column come last in both directions, so "most recent first" never starts with
customers who never ordered.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, and_, case, or_, true
from sqlalchemy.sql.elements import UnaryExpression

from domain.errors import InvalidInput, InvalidPageSize

MAX_PAGE_SIZE = 100

SortValue = datetime | int | str | None
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Position:
    """Where a row sits in a sort order: its sort value, then its id."""

    value: SortValue
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PageRequest:
    """`size` rows after `cursor` (or before it when `backward`), sorted `descending` or not."""

    size: int
    backward: bool = False
    cursor: Position | None = None
    descending: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.size <= MAX_PAGE_SIZE:
            raise InvalidPageSize(
                f"page size must be between 1 and {MAX_PAGE_SIZE}, not {self.size}",
                field="last" if self.backward else "first",
            )

    @classmethod
    def from_relay(
        cls,
        *,
        first: int | None,
        after: Position | None,
        last: int | None,
        before: Position | None,
        descending: bool = False,
    ) -> "PageRequest":
        """A request from Relay arguments: exactly one of `first`/`last`, 1 to 100."""
        if first is not None and last is not None:
            raise InvalidPageSize("pass either first or last, not both", field="last")
        if first is None and last is None:
            raise InvalidPageSize(
                f"a connection needs first or last (1 to {MAX_PAGE_SIZE})", field="first"
            )
        if first is not None:
            if before is not None:
                raise InvalidInput("before goes with last, not with first", field="before")
            return cls(size=first, cursor=after, descending=descending)
        assert last is not None
        if after is not None:
            raise InvalidInput("after goes with first, not with last", field="after")
        return cls(size=last, backward=True, cursor=before, descending=descending)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool
    has_previous: bool


class Row(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


@dataclass(frozen=True, slots=True)
class SortColumn:
    """A column a listing may be sorted by; read rows carry its value under the same `name`."""

    name: str
    column: ColumnElement[Any]
    value_type: type[datetime] | type[int] | type[str]
    nullable: bool = False

    def position(self, row: Row) -> Position:
        """Where `row` sits in this sort order (what its cursor encodes)."""
        value: SortValue = getattr(row, self.name)
        return Position(value, row.id)

    def check(self, position: Position) -> None:
        """Refuse a cursor whose value cannot belong to this column (a forged or stale cursor)."""
        value = position.value
        if value is None and self.nullable:
            return
        if not isinstance(value, self.value_type) or isinstance(value, bool):
            raise InvalidInput("the cursor does not belong to this sort order", field="after")


def order_by(
    sort: SortColumn, id_column: ColumnElement[Any], request: PageRequest
) -> list[UnaryExpression[Any]]:
    """ORDER BY terms in fetch order (a backward page is fetched in reverse, then flipped)."""
    descending = request.descending != request.backward
    terms: list[UnaryExpression[Any]] = []
    if sort.nullable:
        # NULLs last in the listing: 0 before 1 forward, the reverse when fetching backward.
        flag = case((sort.column.is_(None), 1), else_=0)
        terms.append(flag.desc() if request.backward else flag.asc())
    terms.append(sort.column.desc() if descending else sort.column.asc())
    terms.append(id_column.desc() if descending else id_column.asc())
    return terms


def beyond_cursor(
    sort: SortColumn, id_column: ColumnElement[Any], request: PageRequest
) -> ColumnElement[bool]:
    """Rows strictly past the cursor in fetch order; everything when there is no cursor."""
    position = request.cursor
    if position is None:
        return true()
    sort.check(position)
    descending = request.descending != request.backward
    column = sort.column

    def past(left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        comparison: ColumnElement[bool] = left < right if descending else left > right
        return comparison

    past_id = past(id_column, position.id)
    if position.value is None:
        # The cursor is among the NULLs, which come last in the listing.
        if request.backward:
            return or_(column.is_not(None), and_(column.is_(None), past_id))
        return and_(column.is_(None), past_id)
    same_or_past = or_(past(column, position.value), and_(column == position.value, past_id))
    if not sort.nullable:
        return same_or_past
    if request.backward:
        return and_(column.is_not(None), same_or_past)
    return or_(column.is_(None), same_or_past)


def to_page(rows: Sequence[T], request: PageRequest) -> Page[T]:
    """The page from `size + 1` fetched rows: the extra row only says another page exists."""
    more = len(rows) > request.size
    items = list(rows[: request.size])
    if request.backward:
        items.reverse()
        return Page(items, has_next=request.cursor is not None, has_previous=more)
    return Page(items, has_next=more, has_previous=request.cursor is not None)
