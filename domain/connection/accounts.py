"""Connecting a shop's mall accounts: check credentials, store them encrypted, disconnect.

The mall is asked (`check_credentials`) before any database work, so no transaction is open
while it answers. Connecting an account the shop already has active is refused
(`AlreadyConnected`); connecting one it disconnected reconnects that connection, keeping its
cursor and data, so the next sync continues where the old one stopped.

Disconnecting forgets every credential but those the platform verifies webhooks with
(`StorePlatform.webhook_credential_keys`): a mall's privacy requests (Shopify's `shop/redact`
48 hours after an uninstall) must still be verified and acted on.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from domain.audit.models import AuditLog
from domain.connection.errors import (
    AlreadyConnected,
    ConnectionInactive,
    InvalidCredentials,
    PlatformUnreachable,
)
from domain.connection.models import Connection, ConnectionStatus
from domain.credentials import CredentialCipher
from domain.db import AsyncSession
from domain.errors import InvalidInput, NotFound
from domain.ids import ConnectionId, ShopId
from domain.ingest import IMPORT_ACCOUNT_ID
from domain.jobs import Job, Jobs
from domain.platforms import (
    AccountInfo,
    PlatformAccount,
    PlatformAuthRevoked,
    PlatformRejected,
    PlatformUnavailable,
    StorePlatform,
)


class ConnectionNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class CheckedAccount:
    """Credentials the mall accepted, and whose account they open."""

    platform: str
    info: AccountInfo
    credentials: Mapping[str, str]
    base_url: str | None


def require_platform(platforms: Mapping[str, StorePlatform], name: str) -> StorePlatform:
    """The installed platform called `name`; `PlatformUnreachable` when none is."""
    platform = platforms.get(name)
    if platform is None:
        raise PlatformUnreachable(f"no {name} integration is installed", field="platform")
    return platform


async def check_credentials(
    platform: StorePlatform,
    credentials: Mapping[str, str],
    base_url: str | None,
    *,
    field: str = "credentials",
) -> CheckedAccount:
    """Ask the mall whose account the credentials open (a network call: no transaction open).

    Refused credentials raise `InvalidCredentials`; a mall that cannot answer,
    `PlatformUnreachable`. Blank values are refused without asking.
    """
    for key, value in credentials.items():
        if not value.strip():
            raise InvalidInput(f"{key} must not be blank", field=(field, key))
    try:
        info = await platform.check_account(credentials, base_url)
    except (PlatformAuthRevoked, PlatformRejected) as error:
        raise InvalidCredentials(f"{platform.name} refused: {error.message}", field) from error
    except PlatformUnavailable as error:
        raise PlatformUnreachable(f"{platform.name} is unavailable: {error.message}") from error
    return CheckedAccount(platform.name, info, dict(credentials), base_url)


def _audit(session: AsyncSession, shop_id: ShopId, actor: str, action: str, target: str) -> None:
    session.add(AuditLog(shop_id=shop_id, actor=actor, action=action, target=target))


async def require_connection(
    session: AsyncSession, shop_id: ShopId, connection_id: uuid.UUID, *, field: str = "id"
) -> Connection:
    """The shop's connection; other shops' connections are not found either."""
    statement = select(Connection).where(
        Connection.shop_id == shop_id, Connection.id == connection_id
    )
    connection = (await session.exec(statement)).first()
    if connection is None:
        raise ConnectionNotFound("no such connection", field=field)
    return connection


async def connect_account(
    session: AsyncSession,
    shop_id: ShopId,
    checked: CheckedAccount,
    *,
    cipher: CredentialCipher,
    actor: str,
    name: str | None = None,
) -> Connection:
    """Store a checked account as an ACTIVE connection (credentials encrypted); audited."""
    external_id = checked.info.external_account_id
    statement = select(Connection).where(
        Connection.shop_id == shop_id,
        Connection.platform == checked.platform,
        Connection.external_account_id == external_id,
    )
    connection = (await session.exec(statement)).first()
    if connection is not None and connection.status != ConnectionStatus.DISCONNECTED:
        raise AlreadyConnected(
            f"{checked.platform} account {external_id} is already connected", "credentials"
        )
    if connection is None:
        connection = Connection(
            shop_id=shop_id, platform=checked.platform, external_account_id=external_id
        )
    connection.name = (name or checked.info.name or external_id)[:200]
    connection.credentials_encrypted = cipher.encrypt(dict(checked.credentials))
    connection.base_url = checked.base_url
    connection.status = ConnectionStatus.ACTIVE
    connection.last_error = None
    try:
        async with session.begin_nested():
            session.add(connection)
    except IntegrityError as error:
        # Another request connected the same account a moment ago.
        raise AlreadyConnected(
            f"{checked.platform} account {external_id} is already connected", "credentials"
        ) from error
    _audit(session, shop_id, actor, "connection.connect", str(connection.id))
    return connection


async def update_credentials(
    session: AsyncSession,
    shop_id: ShopId,
    connection_id: uuid.UUID,
    checked: CheckedAccount,
    *,
    cipher: CredentialCipher,
    actor: str,
) -> Connection:
    """Replace the credentials with checked ones of the same account; the connection is ACTIVE
    again (after an expired key, or a disconnect)."""
    connection = await require_connection(session, shop_id, connection_id)
    if connection.platform != checked.platform:
        raise InvalidInput(f"this is a {connection.platform} connection", "credentials")
    if checked.info.external_account_id != connection.external_account_id:
        raise InvalidCredentials(
            f"these credentials open {checked.info.external_account_id}, "
            f"not {connection.external_account_id}",
            "credentials",
        )
    connection.credentials_encrypted = cipher.encrypt(dict(checked.credentials))
    connection.base_url = checked.base_url
    connection.status = ConnectionStatus.ACTIVE
    connection.last_error = None
    session.add(connection)
    _audit(session, shop_id, actor, "connection.update_credentials", str(connection.id))
    await session.flush()
    return connection


def webhook_credentials(
    connection: Connection, platform: StorePlatform | None, cipher: CredentialCipher
) -> str | None:
    """The connection's credentials cut down to the platform's `webhook_credential_keys`,
    encrypted; None when nothing is left (or the platform is not installed)."""
    token = connection.credentials_encrypted
    if not token or platform is None:
        return None
    keys = platform.webhook_credential_keys
    kept = {key: value for key, value in cipher.decrypt(token).items() if key in keys}
    return cipher.encrypt(kept) if kept else None


async def mark_disconnected(
    session: AsyncSession,
    connection: Connection,
    platform: StorePlatform | None,
    *,
    cipher: CredentialCipher,
    actor: str,
) -> None:
    """Stop syncing and keep only what verifies webhooks (privacy requests still come);
    audited. The data that came through stays."""
    connection.status = ConnectionStatus.DISCONNECTED
    connection.credentials_encrypted = webhook_credentials(connection, platform, cipher)
    # A running sync notices the lease is gone at its next page and stops.
    connection.sync_lease_until = None
    session.add(connection)
    _audit(session, ShopId(connection.shop_id), actor, "connection.disconnect", str(connection.id))
    await session.flush()


async def disconnect(
    session: AsyncSession,
    shop_id: ShopId,
    connection_id: uuid.UUID,
    *,
    platforms: Mapping[str, StorePlatform],
    cipher: CredentialCipher,
    actor: str,
) -> Connection:
    """Stop syncing and forget the credentials but the webhook keys (`mark_disconnected`)."""
    connection = await require_connection(session, shop_id, connection_id)
    await mark_disconnected(
        session, connection, platforms.get(connection.platform), cipher=cipher, actor=actor
    )
    return connection


def sync_job_id(connection_id: uuid.UUID, since: datetime | None = None) -> str:
    """One queued sync per connection (and per `since` for manual re-syncs)."""
    base = f"sync_connection:{connection_id}"
    return base if since is None else f"{base}:since:{since.isoformat()}"


def enqueue_sync(
    jobs: Jobs, shop_id: ShopId, connection_id: uuid.UUID, since: datetime | None = None
) -> None:
    jobs.enqueue(
        Job.SYNC_CONNECTION,
        _job_id=sync_job_id(connection_id, since),
        shop_id=str(shop_id),
        connection_id=str(connection_id),
        since=since.isoformat() if since is not None else None,
    )


async def request_sync(
    session: AsyncSession,
    shop_id: ShopId,
    connection_id: uuid.UUID,
    *,
    jobs: Jobs,
    since: datetime | None = None,
) -> Connection:
    """Enqueue a sync of an ACTIVE mall connection after commit (from `since` when given)."""
    connection = await require_connection(session, shop_id, connection_id)
    if connection.external_account_id == IMPORT_ACCOUNT_ID:
        raise ConnectionInactive("a CSV import connection has nothing to sync", "id")
    if connection.status != ConnectionStatus.ACTIVE:
        raise ConnectionInactive(f"the connection is {ConnectionStatus(connection.status)}", "id")
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since must carry a time zone", "since")
    enqueue_sync(jobs, shop_id, connection.id, since)
    return connection


def account_of(connection: Connection, cipher: CredentialCipher) -> PlatformAccount:
    """What the platform needs to talk to this connection's account (credentials decrypted)."""
    token = connection.credentials_encrypted
    credentials = cipher.decrypt(token) if token else {}
    return PlatformAccount(
        connection_id=ConnectionId(connection.id),
        external_account_id=connection.external_account_id,
        credentials=credentials,
        base_url=connection.base_url,
    )
