from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.fakes.shopify import FakeShopify, Knobs, ShopifyStore, VirtualClock
from tests.fakes.shopify.store import iso

QUERY = """query($first: Int!, $after: String, $q: String, $key: OrderSortKeys, $rev: Boolean) {
  orders(first: $first, after: $after, query: $q, sortKey: $key, reverse: $rev) {
    pageInfo { hasNextPage endCursor }
    nodes { id updatedAt renamed: name lineItems(first: 1) { nodes { sku } } }
  }
}"""


async def _post(fake: FakeShopify, query: str, **variables: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        return await http.post(
            "/admin/api/2025-01/graphql.json",
            json={"query": query, "variables": variables},
            headers={"X-Shopify-Access-Token": "shpat_test"},
        )


@pytest.fixture
def fake() -> FakeShopify:
    clock = VirtualClock()
    store = ShopifyStore(clock.now)
    start = clock.now() - timedelta(days=10)
    for day in range(10):
        customer = store.add_customer(email=f"c{day}@example.jp")
        store.add_order(customer, created_at=start + timedelta(days=day))
    return FakeShopify(store, knobs=Knobs())


def _ids(response: httpx.Response) -> list[str]:
    return [node["id"] for node in response.json()["data"]["orders"]["nodes"]]


async def test_search_bounds_sorting_and_cursors(fake: FakeShopify) -> None:
    orders = sorted(fake.store.orders.values(), key=lambda order: order.updated_at)
    gids = [order.gid for order in orders]
    lower, upper = iso(orders[2].updated_at), iso(orders[6].updated_at)

    inclusive = await _post(
        fake,
        QUERY,
        first=10,
        q=f"updated_at:>='{lower}' AND updated_at:<='{upper}'",
        key="UPDATED_AT",
    )
    assert _ids(inclusive) == gids[2:7]
    exclusive = await _post(
        fake,
        QUERY,
        first=10,
        q=f"updated_at:>'{lower}' AND updated_at:<'{upper}'",
        key="UPDATED_AT",
    )
    assert _ids(exclusive) == gids[3:6]
    created = await _post(
        fake, QUERY, first=10, q=f"created_at:>={lower}", key="CREATED_AT", rev=True
    )
    assert _ids(created) == gids[2:][::-1]

    first_page = await _post(fake, QUERY, first=4, key="UPDATED_AT")
    info = first_page.json()["data"]["orders"]["pageInfo"]
    assert info["hasNextPage"]
    second_page = await _post(fake, QUERY, first=4, key="UPDATED_AT", after=info["endCursor"])
    assert _ids(first_page) + _ids(second_page) == gids[:8]

    node = first_page.json()["data"]["orders"]["nodes"][0]
    assert set(node) == {"id", "updatedAt", "renamed", "lineItems"}
    assert node["renamed"] == orders[0].name
    assert node["lineItems"] == {"nodes": [{"sku": "SKU-1"}]}


async def test_cost_is_reported_and_limits_are_enforced(fake: FakeShopify) -> None:
    answer = (await _post(fake, QUERY, first=5, key="ID")).json()
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 1 + 5 * 2
    assert cost["actualQueryCost"] == 1 + 5 * 2
    assert cost["throttleStatus"]["currentlyAvailable"] == 1000 - 11

    too_many = (await _post(fake, QUERY, first=251, key="ID")).json()
    assert "first must be between 1 and 250" in too_many["errors"][0]["message"]
    fake.knobs.max_available = 100
    costly = (await _post(fake, QUERY, first=250, key="ID")).json()
    assert costly["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    unknown = (await _post(fake, "{ products(first: 1) { nodes { id } } }")).json()
    assert "doesn't exist" in unknown["errors"][0]["message"]


async def test_a_short_bucket_answers_throttled_and_records_the_violation(
    fake: FakeShopify,
) -> None:
    fake.knobs.max_available = 30
    fake.knobs.restore_rate = 1
    await _post(fake, QUERY, first=10, key="ID")
    throttled = await _post(fake, QUERY, first=10, key="ID")

    body = throttled.json()
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 9
    assert fake.violations == ["request 2 asked 21.0 points with 9.00 available"]
