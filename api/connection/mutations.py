"""Connecting mall accounts. Credentials are checked with the mall before anything is stored
(no transaction is open while it answers), then stored encrypted; they are never readable."""

from datetime import datetime
from typing import Annotated

import strawberry

from api.connection.types import StoreConnection
from api.context import Context, Info
from api.errors import UserError
from api.fields import mutation
from api.relay import decode_id_of
from domain.connection import accounts
from domain.connection.service import ConnectionRow, get_connections, row_of
from domain.credentials import CredentialCipher
from domain.errors import InvalidInput
from domain.platforms import Platform

AMAZON_JP = "A1VC38T7YXB528"


@strawberry.input
class ShopifyCredentialsInput:
    shop_domain: str = strawberry.field(description="The store's x.myshopify.com domain.")
    access_token: str = strawberry.field(description="The app's Admin API access token.")
    client_secret: str = strawberry.field(description="The app's secret: signs webhooks.")


@strawberry.input
class RakutenCredentialsInput:
    service_secret: str
    license_key: str = strawberry.field(description="Expires every three months in RMS.")
    shop_url: str = strawberry.field(description="The shop's URL name on Rakuten Ichiba.")
    notification_auth_key: str | None = strawberry.field(
        default=None,
        description="The auth key RMS puts in its order notifications (システムイベント通知); "
        "without it the connection accepts no notification.",
    )


@strawberry.input
class AmazonCredentialsInput:
    seller_id: str
    refresh_token: str
    lwa_client_id: str
    lwa_client_secret: str
    marketplace_id: str = AMAZON_JP
    notification_secret: str | None = strawberry.field(
        default=None,
        description="The secret the ORDER_CHANGE relay signs notifications with; without it "
        "the connection accepts no notification.",
    )


@strawberry.input(description="One credential of a plugin platform.")
class CredentialEntryInput:
    key: str
    value: str


def _shopify(given: ShopifyCredentialsInput) -> dict[str, str]:
    return {
        "shop_domain": given.shop_domain.strip().lower(),
        "access_token": given.access_token,
        "client_secret": given.client_secret,
    }


def _rakuten(given: RakutenCredentialsInput) -> dict[str, str]:
    credentials = {
        "service_secret": given.service_secret,
        "license_key": given.license_key,
        "shop_url": given.shop_url.strip(),
    }
    if given.notification_auth_key:
        credentials["notification_auth_key"] = given.notification_auth_key.strip()
    return credentials


def _amazon(given: AmazonCredentialsInput) -> dict[str, str]:
    credentials = {
        "seller_id": given.seller_id.strip(),
        "refresh_token": given.refresh_token,
        "lwa_client_id": given.lwa_client_id,
        "lwa_client_secret": given.lwa_client_secret,
        "marketplace_id": given.marketplace_id.strip(),
    }
    if given.notification_secret:
        credentials["notification_secret"] = given.notification_secret
    return credentials


def _entries(given: list[CredentialEntryInput]) -> dict[str, str]:
    if not given or len(given) > 20:
        raise InvalidInput("give 1 to 20 credentials", "credentials")
    return {entry.key: entry.value for entry in given}


@strawberry.input
class ConnectShopifyInput:
    credentials: ShopifyCredentialsInput
    base_url: str | None = strawberry.field(default=None, description="A sandbox or test API.")
    name: str | None = None


@strawberry.input
class ConnectRakutenInput:
    credentials: RakutenCredentialsInput
    base_url: str | None = None
    name: str | None = None


@strawberry.input
class ConnectAmazonInput:
    credentials: AmazonCredentialsInput
    base_url: str | None = None
    name: str | None = None


@strawberry.input(description="Connect an account of a platform a plugin provides.")
class ConnectPlatformInput:
    platform: str
    credentials: list[CredentialEntryInput]
    base_url: str | None = None
    name: str | None = None


@strawberry.input(description="Give exactly one of shopify, rakuten, amazon or credentials.")
class UpdateConnectionCredentialsInput:
    id: strawberry.ID
    shopify: ShopifyCredentialsInput | None = None
    rakuten: RakutenCredentialsInput | None = None
    amazon: AmazonCredentialsInput | None = None
    credentials: list[CredentialEntryInput] | None = None
    base_url: str | None = strawberry.field(
        default=None, description="Replaces the stored one when given."
    )


@strawberry.type
class ConnectionPayload:
    connection: StoreConnection


ConnectShopifyResult = Annotated[
    ConnectionPayload | UserError, strawberry.union("ConnectShopifyResult")
]
ConnectRakutenResult = Annotated[
    ConnectionPayload | UserError, strawberry.union("ConnectRakutenResult")
]
ConnectAmazonResult = Annotated[
    ConnectionPayload | UserError, strawberry.union("ConnectAmazonResult")
]
ConnectPlatformResult = Annotated[
    ConnectionPayload | UserError, strawberry.union("ConnectPlatformResult")
]
UpdateConnectionCredentialsResult = Annotated[
    ConnectionPayload | UserError, strawberry.union("UpdateConnectionCredentialsResult")
]
DisconnectResult = Annotated[ConnectionPayload | UserError, strawberry.union("DisconnectResult")]
SyncConnectionResult = Annotated[
    ConnectionPayload | UserError, strawberry.union("SyncConnectionResult")
]


def _cipher(context: Context) -> CredentialCipher:
    return CredentialCipher(context.settings.secret_key.get_secret_value())


def _base_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")) or len(value) > 500:
        raise InvalidInput("baseUrl must be an http(s) URL of at most 500 characters", "base_url")
    return value


async def _connect(
    context: Context,
    platform_name: str,
    credentials: dict[str, str],
    base_url: str | None,
    name: str | None,
) -> ConnectionPayload:
    platform = accounts.require_platform(context.platforms, platform_name)
    checked = await accounts.check_credentials(platform, credentials, _base_url(base_url))
    connection = await context.run(
        accounts.connect_account,
        checked,
        cipher=_cipher(context),
        actor=context.principal.actor,
        name=name,
    )
    # The first sync (the backfill) starts as soon as the connection is committed.
    accounts.enqueue_sync(context.jobs, context.shop_id, connection.id)
    return ConnectionPayload(connection=StoreConnection.from_row(row_of(connection)))


async def _stored(context: Context, id: strawberry.ID) -> ConnectionRow:
    key = decode_id_of(id, "StoreConnection")
    # A session of its own, closed before the mall is asked.
    async with context.sessions() as session:
        found = await get_connections(session, context.shop_id, [key])
    if key not in found:
        raise accounts.ConnectionNotFound("no such connection", field="id")
    return found[key]


def _new_credentials(input: UpdateConnectionCredentialsInput) -> tuple[str, dict[str, str]]:
    given: list[tuple[str, dict[str, str]]] = []
    if input.shopify is not None:
        given.append(("shopify", _shopify(input.shopify)))
    if input.rakuten is not None:
        given.append(("rakuten", _rakuten(input.rakuten)))
    if input.amazon is not None:
        given.append(("amazon", _amazon(input.amazon)))
    if input.credentials is not None:
        given.append(("credentials", _entries(input.credentials)))
    if len(given) != 1:
        raise InvalidInput("give exactly one of shopify, rakuten, amazon or credentials", ())
    return given[0]


@strawberry.type
class ConnectionMutation:
    @mutation("Connect a Shopify store, once the store accepts the credentials.")
    async def connect_shopify(self, info: Info, input: ConnectShopifyInput) -> ConnectShopifyResult:
        credentials = _shopify(input.credentials)
        return await _connect(
            info.context, Platform.SHOPIFY, credentials, input.base_url, input.name
        )

    @mutation("Connect a Rakuten Ichiba shop, once RMS accepts the credentials.")
    async def connect_rakuten(self, info: Info, input: ConnectRakutenInput) -> ConnectRakutenResult:
        credentials = _rakuten(input.credentials)
        return await _connect(
            info.context, Platform.RAKUTEN, credentials, input.base_url, input.name
        )

    @mutation("Connect an Amazon seller account, once SP-API accepts the credentials.")
    async def connect_amazon(self, info: Info, input: ConnectAmazonInput) -> ConnectAmazonResult:
        credentials = _amazon(input.credentials)
        return await _connect(
            info.context, Platform.AMAZON, credentials, input.base_url, input.name
        )

    @mutation("Connect an account of an installed plugin platform.")
    async def connect_platform(
        self, info: Info, input: ConnectPlatformInput
    ) -> ConnectPlatformResult:
        credentials = _entries(input.credentials)
        return await _connect(info.context, input.platform, credentials, input.base_url, input.name)

    @mutation(
        "Replace a connection's credentials with ones the mall accepts for the same account; "
        "the connection is ACTIVE again (after an expired Rakuten license key, say)."
    )
    async def update_connection_credentials(
        self, info: Info, input: UpdateConnectionCredentialsInput
    ) -> UpdateConnectionCredentialsResult:
        context = info.context
        row = await _stored(context, input.id)
        source, credentials = _new_credentials(input)
        if source != "credentials" and source != row.platform:
            raise InvalidInput(f"this is a {row.platform} connection", source)
        platform = accounts.require_platform(context.platforms, row.platform)
        base_url = _base_url(input.base_url) if input.base_url is not None else row.base_url
        checked = await accounts.check_credentials(platform, credentials, base_url, field=source)
        connection = await context.run(
            accounts.update_credentials,
            row.id,
            checked,
            cipher=_cipher(context),
            actor=context.principal.actor,
        )
        return ConnectionPayload(connection=StoreConnection.from_row(row_of(connection)))

    @mutation(
        "Stop syncing a connection and forget its credentials but the key that verifies the "
        "mall's webhooks (privacy requests still come after a disconnect); its data stays."
    )
    async def disconnect(self, info: Info, id: strawberry.ID) -> DisconnectResult:
        context = info.context
        connection = await context.run(
            accounts.disconnect,
            decode_id_of(id, "StoreConnection"),
            platforms=context.platforms,
            cipher=_cipher(context),
            actor=context.principal.actor,
        )
        return ConnectionPayload(connection=StoreConnection.from_row(row_of(connection)))

    @mutation(
        "Sync a connection now (from its cursor, or re-read from `since`); the sync runs in "
        "the background, follow it with the syncProgress subscription."
    )
    async def sync_connection(
        self, info: Info, id: strawberry.ID, since: datetime | None = None
    ) -> SyncConnectionResult:
        context = info.context
        connection = await context.run(
            accounts.request_sync,
            decode_id_of(id, "StoreConnection"),
            jobs=context.jobs,
            since=since,
        )
        return ConnectionPayload(connection=StoreConnection.from_row(row_of(connection)))
