import uuid
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from domain.audit.models import AuditLog
from domain.connection import accounts
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
from domain.ids import ShopId
from domain.ingest import get_or_create_import_connection
from domain.jobs import Job, JobBuffer, JobRequest
from domain.shop.models import Shop
from tests.factories.shop import make_shop
from tests.plugins.memory_mall import MemoryPlatform

CIPHER = CredentialCipher("test-secret")


class Nowhere:
    async def send(self, requests: list[JobRequest]) -> None:
        raise AssertionError("domain code never sends jobs itself")


def platform() -> MemoryPlatform:
    return MemoryPlatform(tokens={"good": "acct-1", "other": "acct-2"})


async def connect(
    session: AsyncSession, shop: Shop, mall: MemoryPlatform, token: str = "good"
) -> Connection:
    checked = await accounts.check_credentials(mall, {"token": token}, None)
    return await accounts.connect_account(
        session, ShopId(shop.id), checked, cipher=CIPHER, actor="test"
    )


async def disconnect(
    session: AsyncSession, shop_id: ShopId, connection: Connection, mall: MemoryPlatform
) -> Connection:
    return await accounts.disconnect(
        session, shop_id, connection.id, platforms={mall.name: mall}, cipher=CIPHER, actor="t"
    )


async def test_credentials_are_checked_with_the_mall() -> None:
    mall = platform()

    checked = await accounts.check_credentials(mall, {"token": "good"}, "http://127.0.0.1:1")

    assert checked.info.external_account_id == "acct-1"
    assert checked.base_url == "http://127.0.0.1:1"
    with pytest.raises(InvalidCredentials) as refused:
        await accounts.check_credentials(mall, {"token": "bad"}, None)
    assert refused.value.field == ("credentials",)
    with pytest.raises(InvalidInput) as blank:
        await accounts.check_credentials(mall, {"token": "  "}, None)
    assert blank.value.field == ("credentials", "token")
    mall.unavailable = True
    with pytest.raises(PlatformUnreachable):
        await accounts.check_credentials(mall, {"token": "good"}, None)
    assert mall.checks == 3


async def test_a_connection_stores_its_credentials_encrypted(session: AsyncSession) -> None:
    shop = await make_shop(session)

    connection = await connect(session, shop, platform())

    assert connection.status == ConnectionStatus.ACTIVE
    assert connection.external_account_id == "acct-1"
    assert connection.name == "Memory acct-1"
    assert connection.credentials_encrypted is not None
    assert "good" not in connection.credentials_encrypted
    assert CIPHER.decrypt(connection.credentials_encrypted) == {"token": "good"}


async def test_the_same_account_twice_is_refused_until_disconnected(
    session: AsyncSession,
) -> None:
    shop = await make_shop(session)
    mall = platform()
    first = await connect(session, shop, mall)
    first.cursors = {"position": "6"}
    await session.flush()

    with pytest.raises(AlreadyConnected):
        await connect(session, shop, mall)
    await disconnect(session, ShopId(shop.id), first, mall)
    session.expunge_all()
    again = await connect(session, shop, mall)

    assert again.id == first.id
    assert again.status == ConnectionStatus.ACTIVE
    assert again.cursors == {"position": "6"}


async def test_updated_credentials_must_open_the_same_account(session: AsyncSession) -> None:
    shop = await make_shop(session)
    mall = platform()
    connection = await connect(session, shop, mall)
    connection.status = ConnectionStatus.NEEDS_CREDENTIALS
    connection.last_error = "expired"
    other = await accounts.check_credentials(mall, {"token": "other"}, None)
    same = await accounts.check_credentials(mall, {"token": "good"}, "http://127.0.0.1:9")

    with pytest.raises(InvalidCredentials):
        await accounts.update_credentials(
            session, ShopId(shop.id), connection.id, other, cipher=CIPHER, actor="t"
        )
    updated = await accounts.update_credentials(
        session, ShopId(shop.id), connection.id, same, cipher=CIPHER, actor="t"
    )

    assert updated.status == ConnectionStatus.ACTIVE
    assert updated.last_error is None
    assert updated.base_url == "http://127.0.0.1:9"


async def test_disconnect_keeps_only_the_webhook_keys_and_the_connection(
    session: AsyncSession,
) -> None:
    shop = await make_shop(session)
    mall = platform()
    checked = await accounts.check_credentials(mall, {"token": "good", "secret": "wh-1"}, None)
    connection = await accounts.connect_account(
        session, ShopId(shop.id), checked, cipher=CIPHER, actor="test"
    )
    connection.sync_lease_until = datetime(2099, 1, 1, tzinfo=UTC)

    gone = await disconnect(session, ShopId(shop.id), connection, mall)

    assert gone.status == ConnectionStatus.DISCONNECTED
    assert gone.sync_lease_until is None
    assert gone.credentials_encrypted is not None
    assert CIPHER.decrypt(gone.credentials_encrypted) == {"secret": "wh-1"}
    audit = select(AuditLog.action).where(AuditLog.shop_id == shop.id)
    assert sorted((await session.exec(audit)).all()) == [
        "connection.connect",
        "connection.disconnect",
    ]


@pytest.mark.parametrize("installed", [True, False])
async def test_disconnect_forgets_everything_without_webhook_keys(
    session: AsyncSession, installed: bool
) -> None:
    shop = await make_shop(session)
    mall = platform()
    connection = await connect(session, shop, mall)

    gone = await accounts.disconnect(
        session,
        ShopId(shop.id),
        connection.id,
        platforms={mall.name: mall} if installed else {},
        cipher=CIPHER,
        actor="t",
    )

    assert gone.status == ConnectionStatus.DISCONNECTED
    assert gone.credentials_encrypted is None


async def test_a_sync_request_is_buffered_with_a_deterministic_job_id(
    session: AsyncSession,
) -> None:
    shop = await make_shop(session)
    connection = await connect(session, shop, platform())
    jobs = JobBuffer(Nowhere())
    since = datetime(2025, 3, 1, tzinfo=UTC)

    await accounts.request_sync(session, ShopId(shop.id), connection.id, jobs=jobs)
    await accounts.request_sync(session, ShopId(shop.id), connection.id, jobs=jobs, since=since)

    assert [(r.job, r.job_id, r.kwargs["since"]) for r in jobs.pending] == [
        (Job.SYNC_CONNECTION, f"sync_connection:{connection.id}", None),
        (
            Job.SYNC_CONNECTION,
            f"sync_connection:{connection.id}:since:{since.isoformat()}",
            since.isoformat(),
        ),
    ]


async def test_only_active_mall_connections_of_the_shop_can_sync(session: AsyncSession) -> None:
    shop = await make_shop(session)
    other = await make_shop(session)
    shop_id = ShopId(shop.id)
    connection = await connect(session, shop, platform())
    imports = await get_or_create_import_connection(session, shop_id, "memory")
    jobs = JobBuffer(Nowhere())

    with pytest.raises(ConnectionInactive):
        await accounts.request_sync(session, shop_id, imports.id, jobs=jobs)
    with pytest.raises(NotFound):
        await accounts.request_sync(session, ShopId(other.id), connection.id, jobs=jobs)
    with pytest.raises(NotFound):
        await accounts.request_sync(session, shop_id, uuid.uuid4(), jobs=jobs)
    await disconnect(session, shop_id, connection, platform())
    with pytest.raises(ConnectionInactive):
        await accounts.request_sync(session, shop_id, connection.id, jobs=jobs)
    assert jobs.pending == []
