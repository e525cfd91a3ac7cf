"""connectShopify, connectRakuten and connectAmazon with the real platforms, each mall's
`baseUrl` pointing at its fake served on loopback."""

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select

from api.app import create_app
from domain.connection.models import Connection
from domain.credentials import CredentialCipher
from domain.db import AsyncSession
from domain.jobs import Job
from domain.platforms import Platform, StorePlatform
from domain.settings import Settings
from integrations.amazon.platform import AmazonPlatform
from integrations.rakuten.client import LICENSE_RENEWAL_MESSAGE
from integrations.rakuten.platform import RakutenPlatform
from integrations.shopify.platform import ShopifyPlatform
from kizuki.events import InProcessEventBus
from tests.api.conftest import GraphQLClient, RecordingJobQueue, serving
from tests.api.world import ShopWorld
from tests.fakes.amazon import JP, AmazonStore
from tests.fakes.amazon import FakeClock as AmazonClock
from tests.fakes.amazon import create_app as amazon_app
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.rakuten.clock import FakeClock as RakutenClock
from tests.fakes.rakuten.server import create_app as rakuten_app
from tests.fakes.rakuten.store import RakutenStore
from tests.fakes.shopify import FakeShopify, ShopifyStore, VirtualClock

MALLS = [Platform.SHOPIFY, Platform.RAKUTEN, Platform.AMAZON]
SHOPIFY_TOKEN = "shpat_test"


@dataclass(frozen=True)
class Account:
    """Credentials a fake mall accepts, as given through GraphQL and as they are stored."""

    mutation: str
    given: dict[str, str]
    stored: dict[str, str]
    external_id: str
    name: str
    requests: Callable[[], int]


@dataclass
class Malls:
    shopify: FakeShopify
    rakuten: RakutenStore
    amazon: AmazonStore
    urls: dict[str, str]
    platforms: dict[str, StorePlatform]

    def account(self, mall: str) -> Account:
        if mall == Platform.SHOPIFY:
            domain = self.shopify.store.shop_domain
            return Account(
                "connectShopify",
                {"shopDomain": domain, "accessToken": SHOPIFY_TOKEN, "clientSecret": "whsec-1"},
                {"shop_domain": domain, "access_token": SHOPIFY_TOKEN, "client_secret": "whsec-1"},
                domain,
                self.shopify.store.shop_name,
                lambda: self.shopify.requests,
            )
        if mall == Platform.RAKUTEN:
            stored = {**self.rakuten.credentials(), "notification_auth_key": "nk-402321"}
            return Account(
                "connectRakuten",
                {
                    "serviceSecret": stored["service_secret"],
                    "licenseKey": stored["license_key"],
                    "shopUrl": stored["shop_url"],
                    "notificationAuthKey": "nk-402321",
                },
                stored,
                stored["shop_url"],
                stored["shop_url"],
                lambda: len(self.rakuten.requests),
            )
        store = self.amazon
        (refresh_token,) = store.refresh_tokens
        return Account(
            "connectAmazon",
            {
                "sellerId": store.seller_id,
                "refreshToken": refresh_token,
                "lwaClientId": store.client_id,
                "lwaClientSecret": store.client_secret,
                "notificationSecret": "relay-secret",
            },
            {
                "seller_id": store.seller_id,
                "refresh_token": refresh_token,
                "lwa_client_id": store.client_id,
                "lwa_client_secret": store.client_secret,
                "marketplace_id": JP,
                "notification_secret": "relay-secret",
            },
            store.seller_id,
            store.store_name,
            lambda: store.requests + store.token_exchanges,
        )


@pytest.fixture
async def malls() -> AsyncIterator[Malls]:
    shopify_clock = VirtualClock()
    shopify = FakeShopify(ShopifyStore(shopify_clock.now))
    rakuten_clock = RakutenClock(datetime(2026, 6, 1, 3, 0, tzinfo=UTC))
    rakuten = RakutenStore(clock=rakuten_clock)
    amazon_clock = AmazonClock()
    amazon = AmazonStore(amazon_clock)
    async with (
        serve_on_loopback(shopify.app) as shopify_url,
        serve_on_loopback(rakuten_app(rakuten)) as rakuten_url,
        serve_on_loopback(amazon_app(amazon)) as amazon_url,
        httpx.AsyncClient(timeout=5.0) as http,
    ):
        platforms: dict[str, StorePlatform] = {
            Platform.SHOPIFY: ShopifyPlatform(
                http, clock=shopify_clock.now, sleep=shopify_clock.sleep
            ),
            Platform.RAKUTEN: RakutenPlatform(http, clock=rakuten_clock, sleep=rakuten_clock.sleep),
            Platform.AMAZON: AmazonPlatform(http, clock=amazon_clock.now, sleep=amazon_clock.sleep),
        }
        urls: dict[str, str] = {
            Platform.SHOPIFY: shopify_url,
            Platform.RAKUTEN: rakuten_url,
            Platform.AMAZON: amazon_url,
        }
        yield Malls(shopify, rakuten, amazon, urls, platforms)


@pytest.fixture
async def client(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    events: InProcessEventBus,
    malls: Malls,
) -> AsyncIterator[GraphQLClient]:
    app = create_app(
        settings, sessions=sessions, job_queue=jobs, events=events, platforms=malls.platforms
    )
    async with serving(app) as graphql:
        yield graphql


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A loopback URL nothing listens on: bound, never listening, so connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def connect(
    client: GraphQLClient, world: ShopWorld, account: Account, base_url: str, **given: str
) -> dict[str, Any]:
    input_type = f"{account.mutation[0].upper()}{account.mutation[1:]}Input"
    document = f"""mutation($input: {input_type}!) {{ {account.mutation}(input: $input) {{
        __typename
        ... on ConnectionPayload {{
          connection {{ platform status externalAccountId name baseUrl }} }}
        ... on UserError {{ code field message }} }} }}"""
    variables = {"input": {"credentials": {**account.given, **given}, "baseUrl": base_url}}
    data = await client.data(document, key=world.admin, variables=variables)
    result: dict[str, Any] = data[account.mutation]
    return result


async def stored_connections(session: AsyncSession, world: ShopWorld) -> list[Connection]:
    statement = select(Connection).where(Connection.shop_id == world.shop.id)
    return list((await session.exec(statement)).all())


@pytest.mark.parametrize("mall", MALLS)
async def test_credentials_the_mall_accepts_are_stored_encrypted(
    client: GraphQLClient,
    malls: Malls,
    shop_a: ShopWorld,
    session: AsyncSession,
    jobs: RecordingJobQueue,
    mall: str,
) -> None:
    account = malls.account(mall)

    result = await connect(client, shop_a, account, malls.urls[mall])

    assert result == {
        "__typename": "ConnectionPayload",
        "connection": {
            "platform": mall,
            "status": "ACTIVE",
            "externalAccountId": account.external_id,
            "name": account.name,
            "baseUrl": malls.urls[mall],
        },
    }
    assert account.requests() > 0
    if mall == Platform.AMAZON:
        assert malls.amazon.token_exchanges == 1
    (stored,) = [c for c in await stored_connections(session, shop_a) if c != shop_a.connection]
    assert (stored.platform, stored.external_account_id) == (mall, account.external_id)
    token = stored.credentials_encrypted
    assert token is not None
    assert CredentialCipher("test-secret").decrypt(token) == account.stored
    assert [value for value in account.stored.values() if value in token] == []
    assert [request.job for request in jobs.sent] == [Job.SYNC_CONNECTION]


RAKUTEN_REFUSED = f"rakuten refused: {LICENSE_RENEWAL_MESSAGE}"
WRONG_AMAZON_SECRET = (
    {"lwaClientSecret": "wrong-client-secret"},
    "amazon refused: LWA refused the refresh token: invalid_client Client authentication failed",
)
OTHER_AMAZON_MARKETPLACE = (
    {"marketplaceId": "A1PA6795UKMFR9"},
    "amazon refused: the seller does not sell in marketplace A1PA6795UKMFR9",
)


def refused(message: str) -> dict[str, Any]:
    """What a connect mutation answers for credentials the mall refuses."""
    return {
        "__typename": "UserError",
        "code": "INVALID_CREDENTIALS",
        "field": ["input", "credentials"],
        "message": message,
    }


@pytest.mark.parametrize(
    ("mall", "wrong", "message"),
    [
        (
            Platform.SHOPIFY,
            {"accessToken": "shpat_wrong"},
            "shopify refused: Shopify refused the access token (HTTP 401)",
        ),
        (Platform.RAKUTEN, {"licenseKey": "SL402321_wrong"}, RAKUTEN_REFUSED),
        (Platform.RAKUTEN, {"serviceSecret": "SP402321_wrong"}, RAKUTEN_REFUSED),
        (
            Platform.AMAZON,
            {"refreshToken": "Atzr|wrong"},
            "amazon refused: LWA refused the refresh token: invalid_grant "
            "The request has an invalid grant parameter : refresh_token",
        ),
        (Platform.AMAZON, *WRONG_AMAZON_SECRET),
        (Platform.AMAZON, *OTHER_AMAZON_MARKETPLACE),
    ],
)
async def test_credentials_the_mall_refuses_are_invalid_and_not_stored(
    client: GraphQLClient,
    malls: Malls,
    shop_a: ShopWorld,
    session: AsyncSession,
    jobs: RecordingJobQueue,
    mall: str,
    wrong: dict[str, str],
    message: str,
) -> None:
    account = malls.account(mall)

    result = await connect(client, shop_a, account, malls.urls[mall], **wrong)

    assert result == refused(message)
    assert [c.id for c in await stored_connections(session, shop_a)] == [shop_a.connection.id]
    assert jobs.sent == []


async def test_an_expired_rakuten_license_key_is_invalid_credentials(
    client: GraphQLClient,
    malls: Malls,
    shop_a: ShopWorld,
    session: AsyncSession,
    jobs: RecordingJobQueue,
) -> None:
    malls.rakuten.license_expires_at = malls.rakuten.clock() - timedelta(seconds=1)
    account = malls.account(Platform.RAKUTEN)

    result = await connect(client, shop_a, account, malls.urls[Platform.RAKUTEN])

    assert result == refused(RAKUTEN_REFUSED)
    assert [request.status for request in malls.rakuten.requests] == [401]
    assert [c.id for c in await stored_connections(session, shop_a)] == [shop_a.connection.id]
    assert jobs.sent == []


@pytest.mark.parametrize("mall", MALLS)
async def test_a_mall_that_is_down_is_platform_unavailable(
    client: GraphQLClient,
    malls: Malls,
    shop_a: ShopWorld,
    session: AsyncSession,
    jobs: RecordingJobQueue,
    closed_port: str,
    mall: str,
) -> None:
    account = malls.account(mall)

    result = await connect(client, shop_a, account, closed_port)

    assert (result["__typename"], result["code"], result["field"]) == (
        "UserError",
        "PLATFORM_UNAVAILABLE",
        None,
    )
    assert result["message"].startswith(f"{mall} is unavailable: ")
    assert account.requests() == 0
    assert [c.id for c in await stored_connections(session, shop_a)] == [shop_a.connection.id]
    assert jobs.sent == []


@pytest.mark.parametrize(("wrong", "message"), [WRONG_AMAZON_SECRET, OTHER_AMAZON_MARKETPLACE])
async def test_amazon_checks_new_credentials_of_a_seller_already_connected(
    client: GraphQLClient,
    malls: Malls,
    shop_a: ShopWorld,
    shop_b: ShopWorld,
    session: AsyncSession,
    wrong: dict[str, str],
    message: str,
) -> None:
    # The platform keeps a client (token, rate state) per seller: one made for the right
    # credentials must not answer for wrong ones of the same seller and app.
    account = malls.account(Platform.AMAZON)
    first = await connect(client, shop_a, account, malls.urls[Platform.AMAZON])

    again = await connect(client, shop_b, account, malls.urls[Platform.AMAZON], **wrong)

    assert first["__typename"] == "ConnectionPayload"
    assert again == refused(message)
    assert [c.id for c in await stored_connections(session, shop_b)] == [shop_b.connection.id]
