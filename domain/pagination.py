"""Keyset pagination: pages of a sorted listing that stay stable while rows are added.

A listing is sorted by one column then by `id` (the tie-breaker), so every row has a unique
`Position`. A page asks for `size` rows after (or, backward, before) a position. NULLs of a
nullable sort column come last in both directions, so "most recent first" never starts with
customers who never ordered; such a listing reads its rows in two parts, those with a value
and then the others (see `domain.customer.service`), so `order_by` and `beyond_cursor` serve
sorts that are never NULL.

Pages of one `PageShape` (direction, order, kind of cursor) run the same statement, built once:
`order_by` and `beyond_cursor` name the size and the cursor as parameters, and
`page_parameters` gives their values for one request.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import BindParameter, ColumnElement, bindparam, true, tuple_
from sqlalchemy.sql.elements import UnaryExpression

from domain.errors import InvalidInput, InvalidPageSize

MAX_PAGE_SIZE = 100
# The parameters of a page's statement: rows to fetch (one more than the size), the cursor.
FETCH = "page_fetch"
CURSOR_VALUE = "cursor_value"
CURSOR_ID = "cursor_id"

SortValue = datetime | int | float | str | None
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Position:
    """Where a row sits in a sort order: its sort value, then its id."""

    value: SortValue
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PageShape:
    """What a page's statement depends on: fetch direction, order and kind of cursor."""

    backward: bool = False
    descending: bool = False
    # None without a cursor; else whether the cursor sits among NULLs of the sort column.
    null_cursor: bool | None = None


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

    @property
    def shape(self) -> PageShape:
        null_cursor = None if self.cursor is None else self.cursor.value is None
        return PageShape(self.backward, self.descending, null_cursor)


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
    value_type: type[datetime] | type[int] | type[float] | type[str]
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
    sort: SortColumn, id_column: ColumnElement[Any], shape: PageShape
) -> list[UnaryExpression[Any]]:
    """ORDER BY terms in fetch order (a backward page is fetched in reverse, then flipped)."""
    _never_null(sort)
    descending = shape.descending != shape.backward
    if descending:
        return [sort.column.desc(), id_column.desc()]
    return [sort.column.asc(), id_column.asc()]


def beyond_cursor(
    sort: SortColumn, id_column: ColumnElement[Any], shape: PageShape
) -> ColumnElement[bool]:
    """Rows strictly past the cursor (`CURSOR_VALUE`, `CURSOR_ID`) in fetch order; every row
    when the shape has no cursor."""
    _never_null(sort)
    if shape.null_cursor is None:
        return true()
    descending = shape.descending != shape.backward
    value: BindParameter[Any] = bindparam(CURSOR_VALUE, type_=sort.column.type)
    cursor_id: BindParameter[Any] = bindparam(CURSOR_ID, type_=id_column.type)
    # A row comparison, so an index on (column, id) starts at the cursor itself even inside a
    # long run of equal values (thousands of customers with one order).
    position, cursor = tuple_(sort.column, id_column), tuple_(value, cursor_id)
    past: ColumnElement[bool] = position < cursor if descending else position > cursor
    return past


def _never_null(sort: SortColumn) -> None:
    if sort.nullable:
        raise ValueError(f"{sort.name} may be NULL: read it in two parts, not in one statement")


def page_parameters(sort: SortColumn, request: PageRequest) -> dict[str, Any]:
    """The values of a page's statement parameters: rows to fetch and the cursor."""
    parameters: dict[str, Any] = {FETCH: request.size + 1}
    position = request.cursor
    if position is not None:
        sort.check(position)
        parameters[CURSOR_ID] = position.id
        if position.value is not None:
            parameters[CURSOR_VALUE] = position.value
    return parameters


def to_page(rows: Sequence[T], request: PageRequest) -> Page[T]:
    """The page from `size + 1` fetched rows: the extra row only says another page exists."""
    more = len(rows) > request.size
    items = list(rows[: request.size])
    if request.backward:
        items.reverse()
        return Page(items, has_next=request.cursor is not None, has_previous=more)
    return Page(items, has_next=more, has_previous=request.cursor is not None)
