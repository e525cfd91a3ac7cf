from typing import Any

import pytest
from sqlmodel import func, select

from domain.audit.models import AuditLog
from domain.db import AsyncSession
from domain.shop.models import Role
from tests.api.conftest import GraphQLClient, StatementLog
from tests.api.world import ShopWorld

UPDATE = 'mutation { updateShop(input: {name: "renamed"}) { __typename } }'
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "Customer") { name } }'


def codes(result: dict[str, Any]) -> list[str]:
    errors = result.get("errors")
    assert isinstance(errors, list)
    return [error["extensions"]["code"] for error in errors]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.PARTNER])
async def test_only_admins_mutate(
    client: GraphQLClient,
    shop_a: ShopWorld,
    session: AsyncSession,
    sql: StatementLog,
    role: Role,
) -> None:
    sql.clear()
    result = await client.run(UPDATE, key=shop_a.keys[role])

    assert codes(result) == ["FORBIDDEN"]
    assert result["errors"][0]["message"] == "mutations need an admin API key"
    assert result.get("data") is None
    assert sql.beyond_authentication == []
    audit = await session.exec(select(func.count()).select_from(AuditLog))
    assert audit.one() == 0


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE_INTROSPECTION])
@pytest.mark.parametrize("role", [Role.ANALYST, Role.PARTNER])
async def test_introspection_is_for_admins_only(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog, role: Role, query: str
) -> None:
    sql.clear()
    refused = await client.run(query, key=shop_a.keys[role])
    allowed = await client.data(query, key=shop_a.admin)

    assert codes(refused) == ["FORBIDDEN"]
    assert refused.get("data") is None
    assert sql.beyond_authentication == []
    assert allowed


async def test_typename_is_not_introspection(client: GraphQLClient, shop_a: ShopWorld) -> None:
    data = await client.data("{ __typename shop { __typename } }", key=shop_a.keys[Role.PARTNER])

    assert data == {"__typename": "Query", "shop": {"__typename": "Shop"}}


@pytest.mark.parametrize(
    "query",
    [
        "{ customers(first: 1) { edges { node { id } } } }",
        "{ orders(first: 1) { edges { node { id } } } }",
        '{ customer(id: "Q3VzdG9tZXI6MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw") { id } }',
        "{ apiKeys { id } }",
    ],
)
async def test_partners_read_no_customer_or_order_listing(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog, query: str
) -> None:
    sql.clear()
    result = await client.run(query, key=shop_a.keys[Role.PARTNER])

    assert codes(result) == ["FORBIDDEN"]
    assert result.get("data") is None
    assert sql.beyond_authentication == []


async def test_partners_read_the_shop_and_its_connections(
    client: GraphQLClient, shop_a: ShopWorld
) -> None:
    data = await client.data(
        "{ shop { name } connections { name platform status } }", key=shop_a.keys[Role.PARTNER]
    )

    assert data["shop"] == {"name": shop_a.shop.name}
    assert data["connections"] == [
        {"name": shop_a.connection.name, "platform": "shopify", "status": "ACTIVE"}
    ]


@pytest.mark.parametrize(
    "type_name", ["Customer", "CustomerIdentity", "Order", "Subscription", "ApiKey"]
)
async def test_partners_get_no_node_of_customer_data_existing_or_not(
    client: GraphQLClient, shop_a: ShopWorld, type_name: str
) -> None:
    import uuid

    from api.relay import encode_id

    existing = shop_a.global_ids()[type_name][0]
    missing = encode_id(type_name, uuid.uuid4())
    query = "query($id: ID!) { node(id: $id) { id } }"

    found = await client.run(query, key=shop_a.keys[Role.PARTNER], variables={"id": existing})
    unknown = await client.run(query, key=shop_a.keys[Role.PARTNER], variables={"id": missing})

    assert codes(found) == ["FORBIDDEN"]
    assert found == unknown


@pytest.mark.parametrize("type_name", ["Shop", "StoreConnection"])
async def test_partners_get_shop_and_connection_nodes(
    client: GraphQLClient, shop_a: ShopWorld, type_name: str
) -> None:
    node_id = shop_a.global_ids()[type_name][0]

    data = await client.data(
        "query($id: ID!) { node(id: $id) { id __typename } }",
        key=shop_a.keys[Role.PARTNER],
        variables={"id": node_id},
    )

    assert data["node"] == {"id": node_id, "__typename": type_name}


async def test_analysts_read_customers_and_orders(client: GraphQLClient, shop_a: ShopWorld) -> None:
    data = await client.data(
        "{ customers(first: 5) { totalCount } orders(first: 5) { totalCount } }",
        key=shop_a.keys[Role.ANALYST],
    )

    assert data == {
        "customers": {"totalCount": len(shop_a.customers)},
        "orders": {"totalCount": len(shop_a.order_ids)},
    }


async def test_analysts_see_no_api_keys(client: GraphQLClient, shop_a: ShopWorld) -> None:
    result = await client.run("{ apiKeys { id } }", key=shop_a.keys[Role.ANALYST])
    admin = await client.data("{ apiKeys { name role } }", key=shop_a.admin)

    assert codes(result) == ["FORBIDDEN"]
    assert sorted(key["role"] for key in admin["apiKeys"]) == ["ADMIN", "ANALYST", "PARTNER"]
