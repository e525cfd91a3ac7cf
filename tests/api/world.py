"""Two shops with every kind of object the API serves, for isolation and listing tests."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from api.relay import encode_id
from domain.connection.models import Connection
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.shop.models import Role, Shop
from domain.shop.service import create_api_key, create_shop
from domain.subscription.models import (
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from tests.factories.customer import make_connection
from tests.factories.order import make_order

BASE_TIME = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)


@dataclass
class ShopWorld:
    shop: Shop
    keys: dict[Role, str]
    key_ids: dict[Role, uuid.UUID]
    connection: Connection
    customers: list[Customer] = field(default_factory=list)
    identities: list[CustomerIdentity] = field(default_factory=list)
    order_ids: list[uuid.UUID] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    # Every string of this shop's data that must never show up in another shop's responses.
    secrets: set[str] = field(default_factory=set)

    @property
    def admin(self) -> str:
        return self.keys[Role.ADMIN]

    def global_ids(self) -> dict[str, list[str]]:
        """Global IDs of every node type, by type."""
        return {
            "Shop": [encode_id("Shop", self.shop.id)],
            "ApiKey": [encode_id("ApiKey", key) for key in self.key_ids.values()],
            "StoreConnection": [encode_id("StoreConnection", self.connection.id)],
            "Customer": [encode_id("Customer", c.id) for c in self.customers],
            "CustomerIdentity": [encode_id("CustomerIdentity", i.id) for i in self.identities],
            "Order": [encode_id("Order", order_id) for order_id in self.order_ids],
            "Subscription": [encode_id("Subscription", s.id) for s in self.subscriptions],
        }


async def build_shop(
    session: AsyncSession, label: str, *, customers: int = 3, orders_each: int = 2
) -> ShopWorld:
    """A shop named after `label`, its keys, one connection, and customers with everything."""
    token = f"{label}-{uuid.uuid4().hex[:6]}"
    shop = await create_shop(session, f"shop {token}")
    keys: dict[Role, str] = {}
    key_ids: dict[Role, uuid.UUID] = {}
    for role in Role:
        key, raw = await create_api_key(session, ShopId(shop.id), role, name=f"{role} {token}")
        keys[role] = raw
        key_ids[role] = key.id
    connection = await make_connection(session, shop=shop)
    connection.name = f"store {token}"
    connection.last_error = f"error {token}"
    world = ShopWorld(shop=shop, keys=keys, key_ids=key_ids, connection=connection)
    world.secrets |= {shop.name, connection.name, connection.last_error}
    for index in range(customers):
        name = f"name{index} {token}"
        email = f"c{index}.{token}@example.jp"
        customer = Customer(
            shop_id=shop.id,
            display_name=name,
            email=email,
            phone=f"090-{index:04d}",
            created_at=BASE_TIME + timedelta(days=index),
        )
        session.add(customer)
        await session.flush()
        identity = CustomerIdentity(
            shop_id=shop.id,
            customer_id=customer.id,
            connection_id=connection.id,
            platform=connection.platform,
            external_id=f"ext{index}-{token}",
            email=email,
        )
        session.add(identity)
        await session.flush()
        world.customers.append(customer)
        world.identities.append(identity)
        world.secrets |= {name, email, identity.external_id}
        for number in range(orders_each):
            order = await make_order(
                session,
                customer=customer,
                connection_id=connection.id,
                ordered_at=BASE_TIME + timedelta(days=10 * number + index),
                lines=[(f"item {token}", 1 + number, 1000 * (index + 1)), ("sample", 1, 0)],
            )
            world.order_ids.append(order.id)
            world.secrets.add(order.external_id)
        subscription = Subscription(
            shop_id=shop.id,
            connection_id=connection.id,
            customer_id=customer.id,
            external_id=f"sub{index}-{token}",
            status=SubscriptionStatus.ACTIVE,
            product_title=f"定期便 {token}",
            started_at=BASE_TIME,
        )
        session.add(subscription)
        await session.flush()
        session.add(
            SubscriptionEvent(
                shop_id=shop.id,
                subscription_id=subscription.id,
                dedup_key="skip-1",
                kind=SubscriptionEventKind.SKIPPED,
                occurred_at=BASE_TIME + timedelta(days=30),
                reason=f"travelling {token}",
            )
        )
        await session.flush()
        world.subscriptions.append(subscription)
        world.secrets |= {
            subscription.external_id,
            subscription.product_title,
            f"travelling {token}",
        }
    for ids in world.global_ids().values():
        world.secrets |= set(ids)
    return world
