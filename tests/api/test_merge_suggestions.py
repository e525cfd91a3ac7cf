from typing import Any

from api.relay import encode_id
from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest import ingest_batch
from domain.platforms import CustomerRecord, RecordBatch
from domain.shop.models import Role
from tests.api.conftest import GraphQLClient
from tests.api.world import ShopWorld

SUGGESTIONS = """
query($first: Int!, $after: String) {
  mergeSuggestions(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      identityId customer { id }
      suggestion { matched customer { id } }
    } }
  }
}"""
MERGE = """
mutation($input: MergeCustomersInput!) {
  mergeCustomers(input: $input) { __typename }
}"""


async def _suggest(session: AsyncSession, world: ShopWorld) -> None:
    """Customers 1 and 2 come to share customer 0's email: two open suggestions."""
    shop_id, connection_id = ShopId(world.shop.id), ConnectionId(world.connection.id)
    for index in (0, 1, 2):
        record = CustomerRecord(
            "shopify", world.identities[index].external_id, email=f"p{index}@example.jp"
        )
        await ingest_batch(session, shop_id, connection_id, RecordBatch(customers=(record,)))
    for index in (1, 2):
        changed = CustomerRecord(
            "shopify", world.identities[index].external_id, email="p0@example.jp"
        )
        await ingest_batch(session, shop_id, connection_id, RecordBatch(customers=(changed,)))
    await session.commit()


def _customer(world: ShopWorld, index: int) -> str:
    return encode_id("Customer", world.customers[index].id)


async def _page(
    client: GraphQLClient, key: str, first: int, after: str | None = None
) -> dict[str, Any]:
    data = await client.data(SUGGESTIONS, key=key, variables={"first": first, "after": after})
    page: dict[str, Any] = data["mergeSuggestions"]
    return page


async def test_merge_suggestions_list_the_shops_open_suggestions_in_pages(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld, session: AsyncSession
) -> None:
    await _suggest(session, shop_a)

    first = await _page(client, shop_a.keys[Role.ANALYST], 1)
    second = await _page(client, shop_a.admin, 1, first["pageInfo"]["endCursor"])
    other_shop = await _page(client, shop_b.admin, 10)

    assert first["totalCount"] == 2
    assert first["pageInfo"]["hasNextPage"] is True
    assert second["pageInfo"]["hasNextPage"] is False
    nodes = [page["edges"][0]["node"] for page in (first, second)]
    assert {node["identityId"] for node in nodes} == {
        encode_id("CustomerIdentity", shop_a.identities[index].id) for index in (1, 2)
    }
    for node in nodes:
        assert node["suggestion"] == {"matched": "email", "customer": {"id": _customer(shop_a, 0)}}
        assert node["customer"]["id"] in {_customer(shop_a, 1), _customer(shop_a, 2)}
    assert other_shop == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }


async def test_a_merged_suggestion_is_no_longer_listed(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    await _suggest(session, shop_a)
    survivor, absorbed = _customer(shop_a, 0), _customer(shop_a, 1)

    merged = await client.data(
        MERGE,
        key=shop_a.admin,
        variables={"input": {"survivorId": survivor, "absorbedId": absorbed}},
    )
    left = await _page(client, shop_a.admin, 10)

    assert merged["mergeCustomers"]["__typename"] == "MergeCustomersPayload"
    assert left["totalCount"] == 1
    [edge] = left["edges"]
    assert edge["node"]["identityId"] == encode_id("CustomerIdentity", shop_a.identities[2].id)


async def test_partner_keys_cannot_list_merge_suggestions(
    client: GraphQLClient, shop_a: ShopWorld
) -> None:
    refused = await client.run(SUGGESTIONS, key=shop_a.keys[Role.PARTNER], variables={"first": 5})

    assert [error["extensions"]["code"] for error in refused["errors"]] == ["FORBIDDEN"]
