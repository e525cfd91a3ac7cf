import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import column

from domain.errors import InvalidInput, InvalidPageSize
from domain.pagination import PageRequest, Position, SortColumn, to_page


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "a connection needs first or last (1 to 100)"),
        ({"first": 1, "last": 1}, "pass either first or last, not both"),
        ({"first": 0}, "page size must be between 1 and 100, not 0"),
        ({"last": 101}, "page size must be between 1 and 100, not 101"),
    ],
)
def test_page_requests_need_one_size_from_1_to_100(arguments: dict[str, int], message: str) -> None:
    relay: dict[str, object] = {"first": None, "after": None, "last": None, "before": None}
    with pytest.raises(InvalidPageSize) as refused:
        PageRequest.from_relay(**(relay | arguments))  # type: ignore[arg-type]

    assert refused.value.message == message


def test_cursors_go_with_their_direction() -> None:
    position = Position(1, uuid.uuid4())

    with pytest.raises(InvalidInput):
        PageRequest.from_relay(first=1, after=None, last=None, before=position)
    with pytest.raises(InvalidInput):
        PageRequest.from_relay(first=None, after=position, last=1, before=None)


def test_a_forward_page_knows_more_follow_from_the_extra_row() -> None:
    request = PageRequest(size=2, cursor=Position(0, uuid.uuid4()))

    page = to_page([1, 2, 3], request)

    assert (page.items, page.has_next, page.has_previous) == ([1, 2], True, True)


def test_a_backward_page_is_flipped_back_into_listing_order() -> None:
    request = PageRequest(size=2, backward=True)

    page = to_page([3, 2, 1], request)

    assert (page.items, page.has_next, page.has_previous) == ([2, 3], False, True)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (datetime(2024, 1, 1, tzinfo=UTC), True),
        (5, False),
        ("x", False),
        (None, False),
        (True, False),
    ],
)
def test_a_sort_column_accepts_only_positions_of_its_type(value: object, accepted: bool) -> None:
    sort = SortColumn("created_at", column("created_at"), datetime)
    position = Position(value, uuid.uuid4())  # type: ignore[arg-type]

    if accepted:
        sort.check(position)
    else:
        with pytest.raises(InvalidInput):
            sort.check(position)


def test_a_nullable_sort_column_accepts_a_null_position() -> None:
    SortColumn("last_order_at", column("x"), datetime, nullable=True).check(
        Position(None, uuid.uuid4())
    )
