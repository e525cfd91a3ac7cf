import uuid
from collections.abc import Mapping

from domain.connection.models import Connection
from domain.credentials import CredentialCipher
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.settings import Settings
from domain.shop.models import Shop


async def make_connection(
    session: AsyncSession, *, shop: Shop, platform: str = "shopify"
) -> Connection:
    connection = Connection(
        shop_id=shop.id,
        platform=platform,
        name=f"{platform} store",
        external_account_id=f"acct-{uuid.uuid4().hex[:8]}",
    )
    session.add(connection)
    await session.flush()
    return connection


async def make_encrypted_connection(
    session: AsyncSession,
    *,
    shop: Shop,
    settings: Settings,
    platform: str,
    account: str,
    credentials: Mapping[str, str],
    base_url: str | None = None,
) -> Connection:
    """An ACTIVE connection with its credentials encrypted as `connect*` stores them
    (flushed, not committed)."""
    cipher = CredentialCipher(settings.secret_key.get_secret_value())
    connection = Connection(
        shop_id=shop.id,
        platform=platform,
        name=account,
        external_account_id=account,
        credentials_encrypted=cipher.encrypt(dict(credentials)),
        base_url=base_url,
    )
    session.add(connection)
    await session.flush()
    return connection


async def make_customer(
    session: AsyncSession,
    *,
    shop: Shop,
    connection: Connection | None = None,
    name: str = "山田 花子",
    email: str | None = None,
    external_id: str | None = None,
) -> Customer:
    """A customer with one identity on `connection` (a new Shopify one when not given)."""
    connection = connection or await make_connection(session, shop=shop)
    customer = Customer(shop_id=shop.id, display_name=name, email=email)
    session.add(customer)
    await session.flush()
    session.add(
        CustomerIdentity(
            shop_id=shop.id,
            customer_id=customer.id,
            connection_id=connection.id,
            platform=connection.platform,
            external_id=external_id or f"cust-{uuid.uuid4().hex[:8]}",
            email=email,
        )
    )
    await session.flush()
    return customer
