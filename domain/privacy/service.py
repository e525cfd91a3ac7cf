"""Acting on privacy requests: list what is held, erase a customer, purge a connection's data.

- DATA_REQUEST: an audit entry and an open staff task per customer, listing what is held.
- REDACT_CUSTOMER: the person's contact data is erased everywhere it is kept (customer,
  identities, consent proof); orders, subscriptions and risk scores stay, anonymous, so the
  shop's aggregates do not change.
- REDACT_SHOP: everything that came through the connection is deleted, customers known only
  through it with all their rows; its credentials are wiped and it is disconnected.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, delete, or_, select, update

from domain.audit.models import AuditLog
from domain.campaign.models import Enrollment
from domain.connection.models import Connection, ConnectionStatus, WebhookInbox
from domain.consent.models import Consent
from domain.customer.models import Customer, CustomerIdentity, CustomerMerge
from domain.db import AsyncSession
from domain.ids import ConnectionId, CustomerId, ShopId
from domain.ingest.aggregates import recompute_customer_aggregates
from domain.ingest.statements import table_of
from domain.message.models import Message, MessageEvent, Task
from domain.order.models import Order, OrderLine, Product
from domain.platforms import PrivacyAction, PrivacyRequest
from domain.privacy.lookup import customers_named, held_data
from domain.queries import rows
from domain.risk.models import RiskScore, RiskScoreHistory
from domain.shop.models import Shop
from domain.subscription.models import Subscription, SubscriptionEvent

ACTOR = "privacy-request"
# Shopify asks for data requests to be answered within 30 days.
DATA_REQUEST_DUE = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class PrivacyOutcome:
    action: PrivacyAction
    customer_ids: tuple[CustomerId, ...]


def _audit(
    session: AsyncSession, shop_id: ShopId, action: str, target: str, detail: dict[str, object]
) -> None:
    session.add(AuditLog(shop_id=shop_id, actor=ACTOR, action=action, target=target, detail=detail))


async def act_on_privacy_request(
    session: AsyncSession,
    shop_id: ShopId,
    connection_id: ConnectionId,
    request: PrivacyRequest,
    *,
    now: datetime,
) -> PrivacyOutcome:
    """Carry out a mall's privacy request for this connection; audited. Safe to repeat."""
    if request.action is PrivacyAction.REDACT_SHOP:
        customers = await purge_connection(session, shop_id, connection_id)
        _audit(
            session,
            shop_id,
            "privacy.redact_shop",
            str(connection_id),
            {"request_id": request.request_id, "customers_deleted": len(customers)},
        )
        return PrivacyOutcome(request.action, tuple(customers))
    named = await customers_named(session, shop_id, connection_id, request)
    if request.action is PrivacyAction.DATA_REQUEST:
        held = await held_data(session, shop_id, named)
        for item in held:
            session.add(
                Task(
                    shop_id=shop_id,
                    customer_id=item.customer_id,
                    kind="data_request",
                    due_at=now + DATA_REQUEST_DUE,
                    note=f"Privacy data request {request.request_id or ''}: send the customer "
                    f"what is held. {item.describe()}",
                )
            )
        detail: dict[str, object] = {
            "request_id": request.request_id,
            "customers": [item.describe() for item in held],
        }
        _audit(session, shop_id, "privacy.data_request", str(connection_id), detail)
    else:
        await redact_customers(session, shop_id, named)
        _audit(
            session,
            shop_id,
            "privacy.redact_customer",
            str(connection_id),
            {"request_id": request.request_id, "customers": [str(c) for c in named]},
        )
    await session.flush()
    return PrivacyOutcome(request.action, tuple(named))


async def redact_customers(
    session: AsyncSession, shop_id: ShopId, customer_ids: list[CustomerId]
) -> None:
    """Erase the customers' personal data, keeping their anonymous orders and scores."""
    if not customer_ids:
        return
    customer, identity, consent = table_of(Customer), table_of(CustomerIdentity), table_of(Consent)
    await session.exec(
        update(customer)
        .where(customer.c.shop_id == shop_id, customer.c.id.in_(customer_ids))
        .values(display_name="", email=None, phone=None, birth_date=None)
    )
    await session.exec(
        update(identity)
        .where(identity.c.shop_id == shop_id, identity.c.customer_id.in_(customer_ids))
        .values(email=None, email_hash=None, phone_hash=None, merge_evidence={})
    )
    await session.exec(
        update(consent)
        .where(consent.c.shop_id == shop_id, consent.c.customer_id.in_(customer_ids))
        .values(proof={})
    )
    message = table_of(Message)
    await session.exec(
        update(message)
        .where(message.c.shop_id == shop_id, message.c.customer_id.in_(customer_ids))
        .values(payload={})
    )


async def _delete_where(
    session: AsyncSession,
    table: Table,
    shop_id: ShopId,
    column: str,
    values: Select[Any] | Sequence[uuid.UUID],
) -> None:
    await session.exec(delete(table).where(table.c.shop_id == shop_id, table.c[column].in_(values)))


async def purge_connection(
    session: AsyncSession, shop_id: ShopId, connection_id: ConnectionId
) -> list[CustomerId]:
    """Delete every row that came through the connection and the customers known only through
    it; disconnect it and wipe its credentials. The deleted customers' ids."""
    order, line, product = table_of(Order), table_of(OrderLine), table_of(Product)
    subscription, identity = table_of(Subscription), table_of(CustomerIdentity)
    of_connection = [order.c.shop_id == shop_id, order.c.connection_id == connection_id]
    orders = select(order.c.id).where(*of_connection)
    affected = {
        row[0]
        for model in (Order, Subscription, CustomerIdentity)
        for row in await rows(
            session,
            select(table_of(model).c.customer_id).where(
                table_of(model).c.shop_id == shop_id,
                table_of(model).c.connection_id == connection_id,
            ),
        )
    }
    await _delete_where(session, line, shop_id, "order_id", orders)
    await session.exec(delete(order).where(*of_connection))
    subs = select(subscription.c.id).where(
        subscription.c.shop_id == shop_id, subscription.c.connection_id == connection_id
    )
    await _delete_where(session, table_of(SubscriptionEvent), shop_id, "subscription_id", subs)
    for table in (subscription, product, identity):
        await session.exec(
            delete(table).where(table.c.shop_id == shop_id, table.c.connection_id == connection_id)
        )
    still_known = set()
    for table in (identity, order, subscription):
        still_known |= {
            row[0]
            for row in await rows(
                session,
                select(table.c.customer_id).where(
                    table.c.shop_id == shop_id, table.c.customer_id.in_(affected)
                ),
            )
        }
    gone = sorted(CustomerId(c) for c in affected - still_known)
    await _delete_customers(session, shop_id, gone)
    remaining = affected & still_known
    if remaining:
        currency = (
            await rows(
                session, select(table_of(Shop).c.currency).where(table_of(Shop).c.id == shop_id)
            )
        )[0][0]
        await recompute_customer_aggregates(session, shop_id, remaining, currency=currency)
    connection, inbox = table_of(Connection), table_of(WebhookInbox)
    await session.exec(
        update(connection)
        .where(connection.c.shop_id == shop_id, connection.c.id == connection_id)
        .values(
            status=ConnectionStatus.DISCONNECTED.value,
            credentials_encrypted=None,
            cursors={},
            backfilled_at=None,
            backfill_progress=None,
            sync_lease_until=None,
        )
    )
    await session.exec(
        # Processed deliveries only: one being processed holds its row (it would deadlock
        # with this one), and finds the connection disconnected when it gets it.
        update(inbox)
        .where(
            inbox.c.shop_id == shop_id,
            inbox.c.connection_id == connection_id,
            inbox.c.processed_at.is_not(None),
        )
        .values(payload={})
    )
    return gone


async def _delete_customers(
    session: AsyncSession, shop_id: ShopId, customer_ids: list[CustomerId]
) -> None:
    if not customer_ids:
        return
    message, event = table_of(Message), table_of(MessageEvent)
    messages = select(message.c.id).where(
        message.c.shop_id == shop_id, message.c.customer_id.in_(customer_ids)
    )
    await _delete_where(session, event, shop_id, "message_id", messages)
    for model in (Task, Message, Enrollment, Consent, RiskScore, RiskScoreHistory):
        await _delete_where(session, table_of(model), shop_id, "customer_id", customer_ids)
    merge = table_of(CustomerMerge)
    await session.exec(
        delete(merge).where(
            merge.c.shop_id == shop_id,
            or_(merge.c.survivor_id.in_(customer_ids), merge.c.absorbed_id.in_(customer_ids)),
        )
    )
    await _delete_where(session, table_of(Customer), shop_id, "id", customer_ids)
