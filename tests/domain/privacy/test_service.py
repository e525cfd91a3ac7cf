from sqlmodel import col, select

from domain.audit.models import AuditLog
from domain.connection.models import Connection, ConnectionStatus, WebhookInbox
from domain.consent.models import Channel, Consent, ConsentStatus
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession, utcnow
from domain.ids import ConnectionId, ShopId
from domain.ingest import ingest_batch
from domain.message.models import Task
from domain.order.models import Order
from domain.platforms import PrivacyAction, PrivacyRequest
from domain.privacy.service import act_on_privacy_request
from domain.risk.models import RiskScoreHistory
from domain.shop.models import Shop
from tests.factories.shop import make_shop
from tests.plugins.memory_mall.platform import batch_of
from tests.plugins.memory_mall.testing import BASE, add_connection, history


async def loaded(session: AsyncSession) -> tuple[Shop, Connection]:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await ingest_batch(
        session, ShopId(shop.id), ConnectionId(connection.id), batch_of(history(3, 2))
    )
    return shop, connection


async def customer_of(session: AsyncSession, connection: Connection, external_id: str) -> Customer:
    statement = (
        select(Customer)
        .join(CustomerIdentity, col(CustomerIdentity.customer_id) == col(Customer.id))
        .where(
            CustomerIdentity.connection_id == connection.id,
            CustomerIdentity.external_id == external_id,
        )
    )
    return (await session.exec(statement.execution_options(populate_existing=True))).one()


async def act(
    session: AsyncSession, shop: Shop, connection: Connection, request: PrivacyRequest
) -> None:
    await act_on_privacy_request(
        session, ShopId(shop.id), ConnectionId(connection.id), request, now=utcnow()
    )


async def test_a_data_request_opens_a_task_listing_what_is_held(session: AsyncSession) -> None:
    shop, connection = await loaded(session)
    customer = await customer_of(session, connection, "c1")
    request = PrivacyRequest(
        PrivacyAction.DATA_REQUEST, customer_external_ids=("c1",), request_id="req-1"
    )

    await act(session, shop, connection, request)

    (task,) = (await session.exec(select(Task).where(Task.shop_id == shop.id))).all()
    (audit,) = (
        await session.exec(
            select(AuditLog).where(
                AuditLog.shop_id == shop.id, AuditLog.action == "privacy.data_request"
            )
        )
    ).all()
    assert task.customer_id == customer.id
    assert task.kind == "data_request"
    assert "1 mall identities, 2 orders" in task.note
    assert "c1@example.jp" not in task.note
    assert audit.detail["request_id"] == "req-1"


async def test_a_redacted_customer_keeps_anonymous_orders_and_scores(
    session: AsyncSession,
) -> None:
    shop, connection = await loaded(session)
    customer = await customer_of(session, connection, "c1")
    spent = customer.total_spent
    session.add(
        Consent(
            shop_id=shop.id,
            customer_id=customer.id,
            channel=Channel.EMAIL,
            status=ConsentStatus.GRANTED,
            proof={"form": "signup", "email": "c1@example.jp"},
        )
    )
    session.add(
        RiskScoreHistory(shop_id=shop.id, customer_id=customer.id, probability=0.4, as_of=BASE)
    )
    await session.flush()

    await act(
        session,
        shop,
        connection,
        PrivacyRequest(PrivacyAction.REDACT_CUSTOMER, order_external_ids=("o1-0",)),
    )

    redacted = await customer_of(session, connection, "c1")
    identity = (
        await session.exec(
            select(CustomerIdentity)
            .where(CustomerIdentity.customer_id == customer.id)
            .execution_options(populate_existing=True)
        )
    ).one()
    consent = (
        await session.exec(
            select(Consent)
            .where(Consent.customer_id == customer.id)
            .execution_options(populate_existing=True)
        )
    ).one()
    orders = (await session.exec(select(Order).where(Order.customer_id == customer.id))).all()
    scores = (
        await session.exec(
            select(RiskScoreHistory).where(RiskScoreHistory.customer_id == customer.id)
        )
    ).all()
    untouched = await customer_of(session, connection, "c2")
    assert (redacted.display_name, redacted.email, redacted.phone) == ("", None, None)
    assert redacted.total_spent == spent
    assert (identity.email, identity.email_hash, identity.phone_hash) == (None, None, None)
    assert consent.proof == {}
    assert len(orders) == 2
    assert [score.probability for score in scores] == [0.4]
    assert untouched.email == "c2@example.jp"


async def test_a_shop_redaction_purges_what_came_through_the_connection(
    session: AsyncSession,
) -> None:
    shop, connection = await loaded(session)
    other = await add_connection(session, shop, account="other")
    await ingest_batch(session, ShopId(shop.id), ConnectionId(other.id), batch_of(history(1, 1)))
    session.add(
        WebhookInbox(
            shop_id=shop.id,
            connection_id=connection.id,
            event_id="evt-1",
            topic="customers/update",
            payload={"body_base64": "c2VjcmV0"},
            processed_at=BASE,
            error="unusable webhook",
        )
    )
    await session.flush()

    await act(session, shop, connection, PrivacyRequest(PrivacyAction.REDACT_SHOP))

    purged = (
        await session.exec(
            select(Connection)
            .where(Connection.id == connection.id)
            .execution_options(populate_existing=True)
        )
    ).one()
    orders = (await session.exec(select(Order).where(Order.shop_id == shop.id))).all()
    customers = (await session.exec(select(Customer).where(Customer.shop_id == shop.id))).all()
    entry = (
        await session.exec(
            select(WebhookInbox)
            .where(WebhookInbox.connection_id == connection.id)
            .execution_options(populate_existing=True)
        )
    ).one()
    assert {o.connection_id for o in orders} == {other.id}
    assert len(customers) == 1
    assert purged.status == ConnectionStatus.DISCONNECTED
    assert purged.credentials_encrypted is None
    assert purged.cursors == {}
    assert entry.payload == {}
