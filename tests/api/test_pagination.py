import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from api.relay import encode_id
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from tests.api.conftest import GraphQLClient
from tests.api.world import BASE_TIME, ShopWorld, build_shop
from tests.factories.order import make_order

PAGE = """
query($first: Int, $after: String, $last: Int, $before: String, $sort: CustomerSortKey!,
      $reverse: Boolean!, $q: String) {
  customers(first: $first, after: $after, last: $last, before: $before, sortKey: $sort,
            reverse: $reverse, query: $q) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


@dataclass(frozen=True)
class Sample:
    name: str
    created_days: int
    last_order_days: int | None
    total_spent: int
    order_count: int


SAMPLES = [
    Sample("delta", 3, 40, 5000, 2),
    Sample("alpha", 1, None, 0, 0),
    Sample("echo", 5, 10, 5000, 3),
    Sample("bravo", 2, 40, 12000, 1),
    Sample("foxtrot", 4, None, 0, 0),
    Sample("charlie", 6, 25, 800, 2),
    Sample("golf", 0, 5, 5000, 2),
]
SORT_VALUE: dict[str, Callable[[Customer], Any]] = {
    "CREATED_AT": lambda c: c.created_at,
    "LAST_ORDER_AT": lambda c: c.last_order_at,
    "TOTAL_SPENT": lambda c: c.total_spent,
    "ORDER_COUNT": lambda c: c.order_count,
    "NAME": lambda c: c.display_name,
}


@pytest.fixture
async def listed(session: AsyncSession) -> tuple[ShopWorld, list[Customer]]:
    world = await build_shop(session, "paging", customers=0)
    customers = []
    for sample in SAMPLES:
        customer = Customer(
            shop_id=world.shop.id,
            display_name=sample.name,
            email=f"{sample.name}@example.jp",
            created_at=BASE_TIME + timedelta(days=sample.created_days),
            last_order_at=None
            if sample.last_order_days is None
            else BASE_TIME + timedelta(days=sample.last_order_days),
            total_spent=sample.total_spent,
            order_count=sample.order_count,
        )
        session.add(customer)
        session.add(
            CustomerIdentity(
                shop_id=world.shop.id,
                customer_id=customer.id,
                connection_id=world.connection.id,
                platform="shopify",
                external_id=f"SHOP-{sample.name.upper()}",
            )
        )
        customers.append(customer)
    await session.commit()
    return world, customers


def expected(customers: list[Customer], sort: str, reverse: bool) -> list[str]:
    """The listing order: by value then id, NULLs last in both directions."""
    value = SORT_VALUE[sort]
    present = [c for c in customers if value(c) is not None]
    missing = [c for c in customers if value(c) is None]
    present.sort(key=lambda c: (value(c), c.id), reverse=reverse)
    missing.sort(key=lambda c: c.id, reverse=reverse)
    return [encode_id("Customer", c.id) for c in present + missing]


async def walk(
    client: GraphQLClient, key: str, sort: str, reverse: bool, *, backward: bool, size: int
) -> list[str]:
    """Every customer id, page by page, following cursors forward or backward."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        variables: dict[str, Any] = {"sort": sort, "reverse": reverse}
        if backward:
            variables |= {"last": size, "before": cursor}
        else:
            variables |= {"first": size, "after": cursor}
        page = (await client.data(PAGE, key=key, variables=variables))["customers"]
        ids = [edge["node"]["id"] for edge in page["edges"]]
        info = page["pageInfo"]
        if page["edges"]:
            assert info["startCursor"] == page["edges"][0]["cursor"]
            assert info["endCursor"] == page["edges"][-1]["cursor"]
        if backward:
            seen = ids + seen
            assert info["hasNextPage"] is (cursor is not None)
            if not info["hasPreviousPage"]:
                return seen
            cursor = info["startCursor"]
        else:
            seen += ids
            assert info["hasPreviousPage"] is (cursor is not None)
            if not info["hasNextPage"]:
                return seen
            cursor = info["endCursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("sort", list(SORT_VALUE))
async def test_pages_follow_the_sort_forward_and_backward(
    client: GraphQLClient, listed: tuple[ShopWorld, list[Customer]], sort: str, reverse: bool
) -> None:
    world, customers = listed
    order = expected(customers, sort, reverse)

    forward = await walk(client, world.admin, sort, reverse, backward=False, size=2)
    backward = await walk(client, world.admin, sort, reverse, backward=True, size=3)

    assert forward == order
    assert backward == order


async def test_one_page_holds_everything_when_it_is_large_enough(
    client: GraphQLClient, listed: tuple[ShopWorld, list[Customer]]
) -> None:
    world, customers = listed
    variables = {"first": 100, "sort": "CREATED_AT", "reverse": False}

    page = (await client.data(PAGE, key=world.admin, variables=variables))["customers"]

    assert page["totalCount"] == len(customers)
    assert len(page["edges"]) == len(customers)
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is False


async def test_a_cursor_of_another_sort_is_refused(
    client: GraphQLClient, listed: tuple[ShopWorld, list[Customer]]
) -> None:
    world, _ = listed
    first = await client.data(
        PAGE, key=world.admin, variables={"first": 2, "sort": "NAME", "reverse": False}
    )
    cursor = first["customers"]["pageInfo"]["endCursor"]

    result = await client.run(
        PAGE,
        key=world.admin,
        variables={"first": 2, "after": cursor, "sort": "TOTAL_SPENT", "reverse": False},
    )

    assert result["errors"][0]["message"] == "this cursor was made for another sort order"
    assert result["errors"][0]["extensions"] == {"code": "INVALID_INPUT"}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("ALP", ["alpha"]),
        ("o", ["bravo", "echo", "foxtrot", "golf"]),
        ("charlie@example", ["charlie"]),
        ("SHOP-DELTA", ["delta"]),
        ("SHOP-DEL", []),
        ("%", []),
        ("_", []),
    ],
)
async def test_search_matches_name_email_or_exact_external_id(
    client: GraphQLClient,
    listed: tuple[ShopWorld, list[Customer]],
    text: str,
    names: list[str],
) -> None:
    world, customers = listed
    by_id = {encode_id("Customer", c.id): c.display_name for c in customers}
    variables = {"first": 50, "sort": "NAME", "reverse": False, "q": text}

    page = (await client.data(PAGE, key=world.admin, variables=variables))["customers"]

    assert [by_id[edge["node"]["id"]] for edge in page["edges"]] == names
    assert page["totalCount"] == len(names)


async def test_customer_orders_page_backward_from_the_newest(
    client: GraphQLClient, session: AsyncSession
) -> None:
    world = await build_shop(session, "orders", customers=1, orders_each=0)
    customer = world.customers[0]
    ordered: list[datetime] = []
    for day in (5, 1, 9, 3, 7):
        when = BASE_TIME + timedelta(days=day)
        await make_order(
            session, customer=customer, connection_id=world.connection.id, ordered_at=when
        )
        ordered.append(when)
    await session.commit()
    query = """query($id: ID!, $before: String) { customer(id: $id) {
      orders(last: 2, before: $before) {
        totalCount
        edges { node { orderedAt } }
        pageInfo { hasPreviousPage startCursor }
      } } }"""
    customer_id = encode_id("Customer", customer.id)

    newest = await client.data(query, key=world.admin, variables={"id": customer_id})
    cursor = newest["customer"]["orders"]["pageInfo"]["startCursor"]
    older = await client.data(
        query, key=world.admin, variables={"id": customer_id, "before": cursor}
    )

    def days(data: dict[str, Any]) -> list[int]:
        edges = data["customer"]["orders"]["edges"]
        return [(datetime.fromisoformat(e["node"]["orderedAt"]) - BASE_TIME).days for e in edges]

    assert days(newest) == [7, 9]
    assert days(older) == [3, 5]
    assert newest["customer"]["orders"]["totalCount"] == 5
    assert older["customer"]["orders"]["pageInfo"]["hasPreviousPage"] is True


@pytest.mark.parametrize(("sort", "reverse"), [("ORDERED_AT", False), ("TOTAL_AMOUNT", True)])
async def test_orders_page_through_in_sort_order(
    client: GraphQLClient, shop_a: ShopWorld, sort: str, reverse: bool
) -> None:
    query = """query($after: String, $sort: OrderSortKey!, $reverse: Boolean!) {
      orders(first: 4, after: $after, sortKey: $sort, reverse: $reverse) {
        edges { node { id orderedAt total { amount } } }
        pageInfo { hasNextPage endCursor }
      } }"""
    nodes: list[dict[str, Any]] = []
    cursor = None
    while True:
        variables = {"after": cursor, "sort": sort, "reverse": reverse}
        page = (await client.data(query, key=shop_a.admin, variables=variables))["orders"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]

    assert sorted(n["id"] for n in nodes) == sorted(shop_a.global_ids()["Order"])
    values = [n["orderedAt"] if sort == "ORDERED_AT" else n["total"]["amount"] for n in nodes]
    assert values == sorted(values, reverse=reverse)


async def test_an_unknown_customer_has_no_orders_page(
    client: GraphQLClient, shop_a: ShopWorld
) -> None:
    data = await client.data(
        "query($id: ID!) { customer(id: $id) { orders(first: 1) { totalCount } } }",
        key=shop_a.admin,
        variables={"id": encode_id("Customer", uuid.uuid4())},
    )

    assert data == {"customer": None}
