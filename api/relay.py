"""Relay plumbing: the `Node` interface, opaque global IDs, and keyset cursor connections.

A global ID is the unpadded URL-safe base64 of `<Type>:<uuid>`; a cursor is the same encoding
of `[sort key, sort value, uuid]`. Clients treat both as opaque strings.
"""

import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import strawberry

from api.fields import field
from domain.errors import InvalidGlobalId, InvalidInput
from domain.pagination import MAX_PAGE_SIZE, Page, PageRequest, Position, Row, SortColumn

T = TypeVar("T")
R = TypeVar("R", bound=Row)


@strawberry.interface(description="An object with a global ID, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


def _b64encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _b64decode(value: str) -> str:
    padded = value + "=" * (-len(value) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True).decode()


def encode_id(type_name: str, value: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(_b64encode(f"{type_name}:{value}"))


def decode_id(value: str, *, field: str = "id") -> tuple[str, uuid.UUID]:
    """(type name, uuid) of a global ID; `InvalidGlobalId` for anything malformed."""
    try:
        type_name, separator, raw = _b64decode(value).partition(":")
        if separator and type_name:
            return type_name, uuid.UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise InvalidGlobalId(f"{value!r} is not a valid ID", field=field)


def decode_id_of(value: str, type_name: str, *, field: str = "id") -> uuid.UUID:
    """The uuid of a global ID that must name `type_name`."""
    found, key = decode_id(value, field=field)
    if found != type_name:
        raise InvalidGlobalId(
            f"expected the ID of a {type_name}, got one of a {found}", field=field
        )
    return key


def encode_cursor(sort_key: str, position: Position) -> str:
    value = position.value
    wire = value.isoformat() if isinstance(value, datetime) else value
    return _b64encode(json.dumps([sort_key, wire, position.id.hex], separators=(",", ":")))


def decode_cursor(value: str, sort_key: str, column: SortColumn, *, field: str) -> Position:
    """The position a cursor encodes; it must come from a listing in the same sort order."""
    try:
        key, wire, raw_id = json.loads(_b64decode(value))
        position_id = uuid.UUID(hex=raw_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(f"{value!r} is not a valid cursor", field=field) from None
    if key != sort_key:
        raise InvalidInput("this cursor was made for another sort order", field=field)
    sort_value = wire
    if column.value_type is datetime and isinstance(wire, str):
        try:
            sort_value = datetime.fromisoformat(wire)
        except ValueError:
            raise InvalidInput(f"{value!r} is not a valid cursor", field=field) from None
        if sort_value.tzinfo is None:
            raise InvalidInput(f"{value!r} is not a valid cursor", field=field)
    position = Position(sort_value, position_id)
    try:
        column.check(position)
    except InvalidInput:
        raise InvalidInput(f"{value!r} is not a valid cursor", field=field) from None
    return position


def page_request(
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    sort_key: str,
    column: SortColumn,
    reverse: bool = False,
) -> PageRequest:
    """A keyset page request from Relay arguments; bad sizes or cursors raise `InvalidInput`."""
    return PageRequest.from_relay(
        first=first,
        after=None if after is None else decode_cursor(after, sort_key, column, field="after"),
        last=last,
        before=None if before is None else decode_cursor(before, sort_key, column, field="before"),
        descending=reverse,
    )


@strawberry.type(description="Where a page sits in its listing.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    _sort_key: strawberry.Private[str]
    _start: strawberry.Private[Position | None]
    _end: strawberry.Private[Position | None]

    @strawberry.field
    def start_cursor(self) -> str | None:
        return None if self._start is None else encode_cursor(self._sort_key, self._start)

    @strawberry.field
    def end_cursor(self) -> str | None:
        return None if self._end is None else encode_cursor(self._sort_key, self._end)


@strawberry.type
class Edge(Generic[T]):
    node: T
    _sort_key: strawberry.Private[str]
    _position: strawberry.Private[Position]

    @field(description="Pass as `after` or `before` to page from this edge.")
    def cursor(self) -> str:
        return encode_cursor(self._sort_key, self._position)


@strawberry.type(description=f"A page of a listing: `first` or `last` is 1 to {MAX_PAGE_SIZE}.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @field(description="All items of the listing (costs one more query).")
    async def total_count(self) -> int:
        return await self._count()


def to_connection(
    page: Page[R],
    *,
    sort_key: str,
    column: SortColumn,
    node: Callable[[R], T],
    count: Callable[[], Awaitable[int]],
) -> Connection[T]:
    """A connection of `page`, each row shown as `node(row)`."""
    positions: Sequence[Position] = [column.position(row) for row in page.items]
    edges = [
        Edge(node=node(row), _sort_key=sort_key, _position=position)
        for row, position in zip(page.items, positions, strict=True)
    ]
    info = PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        _sort_key=sort_key,
        _start=positions[0] if positions else None,
        _end=positions[-1] if positions else None,
    )
    return Connection(edges=edges, page_info=info, _count=count)
