"""Shop A's keys never see shop B: not its data, and not whether an ID of it exists."""

import json
import uuid
from typing import Any

import pytest

from api.relay import decode_id, encode_id
from domain.shop.models import Role
from tests.api.conftest import GraphQLClient
from tests.api.world import ShopWorld

CUSTOMER_FIELDS = """
  id displayName email phone birthDate marketingRestricted firstOrderAt lastOrderAt orderCount
  totalSpent { amount currency formatted } createdAt
  identities { id platform externalId email emailMasked connection { id name lastError } }
  subscriptions { id externalId status productTitle events { kind occurredAt reason } }
  orders(first: 10) { totalCount edges { cursor node { ...OrderFields } } }
"""
ORDER_FIELDS = """
  id externalId platform orderedAt status total { amount formatted } itemQuantity
  lines { position sku title quantity unitPrice { amount } amount { amount } }
"""
EVERYTHING = f"""
fragment OrderFields on Order {{ {ORDER_FIELDS} }}
{{
  shop {{ id name timezone currency horizonDays createdAt }}
  connections {{ id platform name status lastSyncAt lastError createdAt }}
  customers(first: 20) {{
    totalCount
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ {CUSTOMER_FIELDS} }} }}
  }}
  orders(first: 50) {{
    totalCount
    edges {{ cursor node {{ ...OrderFields customer {{ id displayName }} }} }}
  }}
}}"""
ADMIN_EXTRA = "{ apiKeys { id name role prefix createdAt revokedAt } }"
NODE = f"""
fragment OrderFields on Order {{ {ORDER_FIELDS} }}
query($id: ID!) {{
  node(id: $id) {{
    id __typename
    ... on Shop {{ name }}
    ... on ApiKey {{ name role }}
    ... on StoreConnection {{ name lastError }}
    ... on Customer {{ {CUSTOMER_FIELDS} }}
    ... on CustomerIdentity {{ externalId email connection {{ name }} }}
    ... on Order {{ ...OrderFields customer {{ displayName }} }}
    ... on Subscription {{ externalId productTitle events {{ reason }} }}
  }}
}}"""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id __typename } }"
CUSTOMER = "query($id: ID!) { customer(id: $id) { id displayName } }"


def leaks(response: dict[str, Any], other: ShopWorld) -> set[str]:
    text = json.dumps(response, ensure_ascii=False)
    return {secret for secret in other.secrets if secret in text}


def random_id_like(global_id: str) -> str:
    type_name, _ = decode_id(global_id)
    return encode_id(type_name, uuid.uuid4())


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST])
async def test_listings_show_only_the_callers_shop(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld, role: Role
) -> None:
    data = await client.data(EVERYTHING, key=shop_a.keys[role])

    assert leaks(data, shop_b) == set()
    assert leaks(data, shop_a) >= {shop_a.shop.name, shop_a.customers[0].display_name}
    assert data["customers"]["totalCount"] == len(shop_a.customers)
    assert data["orders"]["totalCount"] == len(shop_a.order_ids)
    assert {edge["node"]["id"] for edge in data["orders"]["edges"]} == set(
        shop_a.global_ids()["Order"]
    )


async def test_api_key_listing_shows_only_the_callers_shop(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    data = await client.data(ADMIN_EXTRA, key=shop_a.admin)

    assert leaks(data, shop_b) == set()
    assert {key["id"] for key in data["apiKeys"]} == set(shop_a.global_ids()["ApiKey"])


async def test_partner_listings_show_only_the_callers_shop(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    data = await client.data(
        "{ shop { id name } connections { id name lastError } }", key=shop_a.keys[Role.PARTNER]
    )

    assert leaks(data, shop_b) == set()


@pytest.mark.parametrize("role", list(Role))
async def test_every_foreign_node_answers_as_a_missing_one(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld, role: Role
) -> None:
    key = shop_a.keys[role]
    checked = 0
    for type_name, ids in shop_b.global_ids().items():
        for foreign in ids:
            missing = random_id_like(foreign)
            for_foreign = await client.run(NODE, key=key, variables={"id": foreign})
            for_missing = await client.run(NODE, key=key, variables={"id": missing})

            assert for_foreign == for_missing, (type_name, role)
            assert leaks(for_foreign, shop_b) == set()
            checked += 1
    assert checked == sum(len(ids) for ids in shop_b.global_ids().values())


async def test_own_nodes_are_found(client: GraphQLClient, shop_a: ShopWorld) -> None:
    for type_name, ids in shop_a.global_ids().items():
        data = await client.data(NODE, key=shop_a.admin, variables={"id": ids[0]})
        assert data["node"]["__typename"] == type_name
        assert data["node"]["id"] == ids[0]


@pytest.mark.parametrize("role", list(Role))
async def test_nodes_of_another_shop_answer_as_missing_ones(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld, role: Role
) -> None:
    key = shop_a.keys[role]
    for ids in shop_b.global_ids().values():
        for_foreign = await client.run(NODES, key=key, variables={"ids": ids})
        for_missing = await client.run(
            NODES, key=key, variables={"ids": [random_id_like(i) for i in ids]}
        )

        assert for_foreign == for_missing
        assert leaks(for_foreign, shop_b) == set()


async def test_mixed_nodes_return_own_objects_and_null_for_foreign_ones(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    own = shop_a.global_ids()["Customer"][0]
    foreign = shop_b.global_ids()["Customer"][0]

    data = await client.data(NODES, key=shop_a.admin, variables={"ids": [foreign, own, foreign]})

    assert data["nodes"] == [None, {"id": own, "__typename": "Customer"}, None]


async def test_customer_by_a_foreign_id_answers_as_a_missing_one(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    for foreign in shop_b.global_ids()["Customer"]:
        for_foreign = await client.run(CUSTOMER, key=shop_a.admin, variables={"id": foreign})
        for_missing = await client.run(
            CUSTOMER, key=shop_a.admin, variables={"id": random_id_like(foreign)}
        )

        assert for_foreign == for_missing == {"data": {"customer": None}}


async def test_searching_for_another_shops_data_finds_nothing(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    customer = shop_b.customers[0]
    identity = shop_b.identities[0]
    query = """query($q: String!) {
      customers(first: 10, query: $q) { totalCount edges { node { id } } }
      orders(first: 10, query: $q) { totalCount edges { node { id } } }
    }"""
    for text in [customer.display_name, customer.email or "", identity.external_id, "bravo"]:
        data = await client.data(query, key=shop_a.admin, variables={"q": text})

        assert data["customers"] == {"totalCount": 0, "edges": []}
        assert data["orders"] == {"totalCount": 0, "edges": []}
