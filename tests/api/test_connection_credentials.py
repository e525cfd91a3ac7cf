"""The optional notification credentials of the Rakuten and Amazon connect inputs."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from starlette.applications import Starlette

from api.app import create_app
from api.relay import decode_id_of
from domain.connection.models import Connection
from domain.credentials import CredentialCipher
from domain.db import AsyncSession
from domain.settings import Settings
from kizuki.events import InProcessEventBus
from tests.api.conftest import GraphQLClient, RecordingJobQueue, serving
from tests.api.world import ShopWorld
from tests.plugins.memory_mall import MemoryPlatform

RAKUTEN = {"serviceSecret": "sec", "licenseKey": "lic-1", "shopUrl": "kizuki-tea"}
AMAZON = {
    "sellerId": "A2SELLER0JP",
    "refreshToken": "Atzr|1",
    "lwaClientId": "client",
    "lwaClientSecret": "secret",
}
CONNECT_RAKUTEN = """
mutation($input: ConnectRakutenInput!) {
  connectRakuten(input: $input) {
    ... on ConnectionPayload { connection { id } }
    ... on UserError { code field }
  }
}"""
CONNECT_AMAZON = """
mutation($input: ConnectAmazonInput!) {
  connectAmazon(input: $input) {
    ... on ConnectionPayload { connection { id } }
    ... on UserError { code field }
  }
}"""
UPDATE = """
mutation($input: UpdateConnectionCredentialsInput!) {
  updateConnectionCredentials(input: $input) {
    ... on ConnectionPayload { connection { id status } }
    ... on UserError { code field }
  }
}"""


@pytest.fixture
def app(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    events: InProcessEventBus,
) -> Starlette:
    rakuten = MemoryPlatform(
        name="rakuten", token_key="license_key", tokens={"lic-1": "kizuki-tea"}
    )
    amazon = MemoryPlatform(
        name="amazon", token_key="refresh_token", tokens={"Atzr|1": "A2SELLER0JP"}
    )
    return create_app(
        settings,
        sessions=sessions,
        job_queue=jobs,
        events=events,
        platforms={"rakuten": rakuten, "amazon": amazon},
    )


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[GraphQLClient]:
    async with serving(app) as graphql:
        yield graphql


async def _credentials(session: AsyncSession, connection_id: str) -> dict[str, str]:
    statement = select(Connection).where(
        Connection.id == decode_id_of(connection_id, "StoreConnection")
    )
    stored = (await session.exec(statement)).one()
    await session.refresh(stored)
    assert stored.credentials_encrypted is not None
    return CredentialCipher("test-secret").decrypt(stored.credentials_encrypted)


async def test_rakuten_takes_an_optional_notification_auth_key(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    data: dict[str, Any] = await client.data(
        CONNECT_RAKUTEN,
        key=shop_a.admin,
        variables={"input": {"credentials": RAKUTEN}},
    )
    connection_id = data["connectRakuten"]["connection"]["id"]
    assert "notification_auth_key" not in await _credentials(session, connection_id)

    given = {**RAKUTEN, "notificationAuthKey": " nk-1 "}
    updated = await client.data(
        UPDATE, key=shop_a.admin, variables={"input": {"id": connection_id, "rakuten": given}}
    )

    assert updated["updateConnectionCredentials"]["connection"]["status"] == "ACTIVE"
    assert await _credentials(session, connection_id) == {
        "service_secret": "sec",
        "license_key": "lic-1",
        "shop_url": "kizuki-tea",
        "notification_auth_key": "nk-1",
    }


async def test_amazon_takes_an_optional_relay_secret(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    given = {**AMAZON, "notificationSecret": "relay-secret"}
    data = await client.data(
        CONNECT_AMAZON, key=shop_a.admin, variables={"input": {"credentials": given}}
    )

    connection_id = data["connectAmazon"]["connection"]["id"]
    credentials = await _credentials(session, connection_id)
    assert credentials["notification_secret"] == "relay-secret"
    assert credentials["marketplace_id"] == "A1VC38T7YXB528"
