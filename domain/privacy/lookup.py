"""Finding the customers a privacy request names, and what is held about them."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select

from domain.consent.models import Consent
from domain.customer.models import CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ConnectionId, CustomerId, ShopId
from domain.ingest.contact import normalise_email, phone_hash
from domain.ingest.statements import table_of
from domain.message.models import Message
from domain.order.models import Order
from domain.platforms import PrivacyRequest
from domain.queries import rows
from domain.risk.models import RiskScoreHistory
from domain.subscription.models import Subscription

IDENTITY = table_of(CustomerIdentity).c
ORDER = table_of(Order).c


async def customers_named(
    session: AsyncSession, shop_id: ShopId, connection_id: ConnectionId, request: PrivacyRequest
) -> list[CustomerId]:
    """Customers the request names through this connection: by the mall's customer or order
    ids, or by email or phone as this connection stored them."""
    conditions: list[ColumnElement[bool]] = []
    if request.customer_external_ids:
        conditions.append(IDENTITY.external_id.in_(request.customer_external_ids))
    email = normalise_email(request.email)
    if email is not None and email.hash is not None:
        conditions.append(IDENTITY.email_hash == email.hash)
    phone = phone_hash(request.phone)
    if phone is not None:
        conditions.append(IDENTITY.phone_hash == phone)
    found: set[uuid.UUID] = set()
    if conditions:
        statement = select(IDENTITY.customer_id).where(
            IDENTITY.shop_id == shop_id, IDENTITY.connection_id == connection_id, or_(*conditions)
        )
        found |= {row[0] for row in await rows(session, statement)}
    if request.order_external_ids:
        statement = select(ORDER.customer_id).where(
            ORDER.shop_id == shop_id,
            ORDER.connection_id == connection_id,
            ORDER.external_id.in_(request.order_external_ids),
        )
        found |= {row[0] for row in await rows(session, statement)}
    return sorted(CustomerId(customer_id) for customer_id in found)


@dataclass(frozen=True, slots=True)
class HeldData:
    """What Kizuki holds about one customer, counted (never the values themselves)."""

    customer_id: CustomerId
    identities: int
    orders: int
    subscriptions: int
    consents: int
    messages: int
    risk_scores: int

    def describe(self) -> str:
        return (
            f"customer {self.customer_id}: profile (name, email, phone, birth date), "
            f"{self.identities} mall identities, {self.orders} orders, "
            f"{self.subscriptions} subscriptions, {self.consents} consent records, "
            f"{self.messages} messages, {self.risk_scores} risk scores"
        )


async def held_data(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[CustomerId]
) -> list[HeldData]:
    """Counts of every kind of row held for each customer."""
    held: list[HeldData] = []
    models = (CustomerIdentity, Order, Subscription, Consent, Message, RiskScoreHistory)
    for customer_id in customer_ids:
        counts: list[int] = []
        for model in models:
            table = table_of(model)
            statement = select(func.count()).where(
                table.c.shop_id == shop_id, table.c.customer_id == customer_id
            )
            counts.append(int((await rows(session, statement))[0][0]))
        held.append(HeldData(customer_id, *counts))
    return held
