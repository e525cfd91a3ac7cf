import uuid
from typing import Any

import pytest
from sqlmodel import col, select

from api.relay import encode_id
from domain.audit.models import AuditLog
from domain.db import AsyncSession
from domain.shop.models import ApiKey, Role, Shop
from tests.api.conftest import GraphQLClient
from tests.api.world import ShopWorld

UPDATE_SHOP = """
mutation($input: UpdateShopInput!) {
  updateShop(input: $input) {
    __typename
    ... on UpdateShopPayload { shop { name timezone horizonDays } }
    ... on UserError { code message field }
  }
}"""
CREATE_KEY = """
mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    __typename
    ... on CreateApiKeyPayload { key apiKey { id name role prefix revokedAt } }
    ... on UserError { code message field }
  }
}"""
REVOKE_KEY = """
mutation($id: ID!) {
  revokeApiKey(id: $id) {
    __typename
    ... on RevokeApiKeyPayload { apiKey { id revokedAt } }
    ... on UserError { code message field }
  }
}"""


async def audit_actions(session: AsyncSession, world: ShopWorld) -> list[str]:
    rows = await session.exec(
        select(AuditLog.action)
        .where(AuditLog.shop_id == world.shop.id)
        .order_by(col(AuditLog.occurred_at))
    )
    return list(rows.all())


async def stored_shop(session: AsyncSession, world: ShopWorld) -> Shop:
    """The shop as the database has it now (not as this session last saw it)."""
    statement = (
        select(Shop).where(Shop.id == world.shop.id).execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).one()


async def test_update_shop_changes_what_is_given_and_audits_it(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    data = await client.data(
        UPDATE_SHOP,
        key=shop_a.admin,
        variables={"input": {"timezone": "Europe/Berlin", "horizonDays": 120}},
    )

    assert data["updateShop"] == {
        "__typename": "UpdateShopPayload",
        "shop": {"name": shop_a.shop.name, "timezone": "Europe/Berlin", "horizonDays": 120},
    }
    shop = await stored_shop(session, shop_a)
    assert (shop.timezone, shop.horizon_days) == ("Europe/Berlin", 120)
    assert await audit_actions(session, shop_a) == ["shop.update"]
    entry = (await session.exec(select(AuditLog).where(AuditLog.shop_id == shop_a.shop.id))).one()
    assert entry.actor == f"api_key:{shop_a.key_ids[Role.ADMIN]}"
    assert entry.detail == {"timezone": ["Asia/Tokyo", "Europe/Berlin"], "horizon_days": [90, 120]}


@pytest.mark.parametrize(
    ("given", "code", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "INVALID_INPUT", ["input", "timezone"]),
        ({"timezone": "../etc/passwd"}, "INVALID_INPUT", ["input", "timezone"]),
        ({"name": "ok", "timezone": "Tokyo"}, "INVALID_INPUT", ["input", "timezone"]),
        ({"horizonDays": 0}, "INVALID_INPUT", ["input", "horizonDays"]),
        ({"horizonDays": 731}, "INVALID_INPUT", ["input", "horizonDays"]),
        ({"name": "   "}, "INVALID_INPUT", ["input", "name"]),
        ({"name": "x" * 201}, "INVALID_INPUT", ["input", "name"]),
    ],
)
async def test_update_shop_refuses_bad_input_with_one_user_error(
    client: GraphQLClient,
    shop_a: ShopWorld,
    session: AsyncSession,
    given: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    data = await client.data(UPDATE_SHOP, key=shop_a.admin, variables={"input": given})

    result = data["updateShop"]
    assert result["__typename"] == "UserError"
    assert (result["code"], result["field"]) == (code, field)
    shop = await stored_shop(session, shop_a)
    assert (shop.name, shop.timezone, shop.horizon_days) == (shop_a.shop.name, "Asia/Tokyo", 90)
    assert await audit_actions(session, shop_a) == []


async def test_update_shop_to_a_taken_name_is_name_taken(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    data = await client.data(
        UPDATE_SHOP, key=shop_a.admin, variables={"input": {"name": shop_b.shop.name}}
    )

    assert data["updateShop"] == {
        "__typename": "UserError",
        "code": "NAME_TAKEN",
        "message": f"a shop named {shop_b.shop.name!r} exists",
        "field": ["input", "name"],
    }


async def test_created_key_is_shown_once_and_authenticates_with_its_role(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    data = await client.data(
        CREATE_KEY, key=shop_a.admin, variables={"input": {"name": "BI export", "role": "ANALYST"}}
    )

    created = data["createApiKey"]
    assert created["__typename"] == "CreateApiKeyPayload"
    assert created["apiKey"]["name"] == "BI export"
    assert created["apiKey"]["role"] == "ANALYST"
    assert created["apiKey"]["revokedAt"] is None
    secret = created["key"]
    assert created["apiKey"]["prefix"] == secret.split("_", 2)[2][:6]
    listed = await client.data("{ apiKeys { id name } }", key=shop_a.admin)
    assert {"id": created["apiKey"]["id"], "name": "BI export"} in listed["apiKeys"]
    assert secret not in str(listed)
    as_analyst = await client.run(UPDATE_SHOP, key=secret, variables={"input": {"name": "x"}})
    assert as_analyst["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await client.data("{ shop { name } }", key=secret))["shop"]["name"] == shop_a.shop.name
    assert await audit_actions(session, shop_a) == ["api_key.create"]


async def test_revoked_key_stops_working_at_once(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    analyst_id = encode_id("ApiKey", shop_a.key_ids[Role.ANALYST])

    data = await client.data(REVOKE_KEY, key=shop_a.admin, variables={"id": analyst_id})
    again = await client.data(REVOKE_KEY, key=shop_a.admin, variables={"id": analyst_id})

    assert data["revokeApiKey"]["apiKey"]["id"] == analyst_id
    assert data["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    assert again["revokeApiKey"] == data["revokeApiKey"]
    response = await client.post("{ shop { name } }", key=shop_a.keys[Role.ANALYST])
    assert response.status_code == 401
    assert await audit_actions(session, shop_a) == ["api_key.revoke"]


async def test_the_last_admin_key_cannot_be_revoked(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    admin_id = encode_id("ApiKey", shop_a.key_ids[Role.ADMIN])

    data = await client.data(REVOKE_KEY, key=shop_a.admin, variables={"id": admin_id})

    assert data["revokeApiKey"] == {
        "__typename": "UserError",
        "code": "CONFLICT",
        "message": "the shop's last admin key cannot be revoked",
        "field": ["id"],
    }
    revoked = await session.exec(
        select(ApiKey.revoked_at).where(ApiKey.id == shop_a.key_ids[Role.ADMIN])
    )
    assert revoked.one() is None


async def test_revoking_another_shops_key_is_indistinguishable_from_an_unknown_one(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld, session: AsyncSession
) -> None:
    foreign = encode_id("ApiKey", shop_b.key_ids[Role.ANALYST])
    unknown = encode_id("ApiKey", uuid.uuid4())

    for_foreign = await client.run(REVOKE_KEY, key=shop_a.admin, variables={"id": foreign})
    for_unknown = await client.run(REVOKE_KEY, key=shop_a.admin, variables={"id": unknown})

    assert for_foreign == for_unknown
    assert for_foreign["data"]["revokeApiKey"] == {
        "__typename": "UserError",
        "code": "NOT_FOUND",
        "message": "no such API key",
        "field": ["id"],
    }
    assert (
        await client.post("{ shop { name } }", key=shop_b.keys[Role.ANALYST])
    ).status_code == 200


@pytest.mark.parametrize("value", ["%%%", encode_id("Customer", uuid.uuid4())])
async def test_revoke_with_a_bad_id_is_invalid_id(
    client: GraphQLClient, shop_a: ShopWorld, value: str
) -> None:
    data = await client.data(REVOKE_KEY, key=shop_a.admin, variables={"id": value})

    assert data["revokeApiKey"]["__typename"] == "UserError"
    assert (data["revokeApiKey"]["code"], data["revokeApiKey"]["field"]) == ("INVALID_ID", ["id"])


async def test_a_user_error_rolls_back_the_whole_operation(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    query = """
    mutation {
      first: createApiKey(input: {name: "kept?", role: PARTNER}) { __typename }
      second: createApiKey(input: {name: "  ", role: PARTNER}) {
        ... on UserError { code field }
      }
    }"""

    data = await client.data(query, key=shop_a.admin)

    assert data == {
        "first": {"__typename": "CreateApiKeyPayload"},
        "second": {"code": "INVALID_INPUT", "field": ["input", "name"]},
    }
    names = (await session.exec(select(ApiKey.name).where(ApiKey.shop_id == shop_a.shop.id))).all()
    assert "kept?" not in names
    assert await audit_actions(session, shop_a) == []
