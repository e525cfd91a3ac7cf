"""Staff merges of customers and their exact undoing."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel, col
from sqlmodel import select as select_models
from sqlmodel.sql.expression import SelectOfScalar

from domain.audit.models import AuditLog
from domain.campaign.models import Campaign, Enrollment
from domain.connection.models import Connection
from domain.consent.models import Channel, Consent, ConsentStatus
from domain.customer.belongings import restore_risk_score, take_risk_score
from domain.customer.evidence import merges_of_customers
from domain.customer.merging import merge_customers, unmerge_customer
from domain.customer.models import Customer, CustomerIdentity, CustomerMerge
from domain.db import AsyncSession
from domain.errors import (
    CustomerAlreadyMerged,
    CustomerNotFound,
    DomainError,
    MergeAlreadyUndone,
    MergeBlocked,
    MergeNotFound,
    MergeWithItself,
)
from domain.ids import ShopId
from domain.ingest.statements import fetch_all, table_of
from domain.jobs import Job, JobArg
from domain.message.models import Task
from domain.order.models import Order
from domain.platforms import CustomerRecord, RecordBatch, SubscriptionRecord
from domain.risk.models import RiskScore
from domain.risk.reasons import shown_mask, sign_mask
from domain.risk.signs import Sign
from domain.shop.models import Shop
from domain.subscription.models import Subscription
from tests.domain.ingest.records import T0, customer_of, ingest, order
from tests.factories.customer import make_connection, make_customer
from tests.factories.shop import make_shop

NOW = datetime(2024, 6, 1, tzinfo=UTC)


@dataclass
class RecordingJobs:
    sent: list[tuple[Job, dict[str, JobArg]]] = field(default_factory=list)

    def enqueue(self, job: Job, *, _job_id: str | None = None, **kwargs: JobArg) -> None:
        self.sent.append((job, kwargs))


async def dump(session: AsyncSession, shop: Shop) -> dict[str, list[dict[str, Any]]]:
    """Every row a merge may touch, ordered; customers without `updated_at`."""
    tables: dict[str, list[dict[str, Any]]] = {}
    models: list[type[SQLModel]] = [
        Customer,
        CustomerIdentity,
        Order,
        Subscription,
        Consent,
        RiskScore,
        Task,
    ]
    for model in models:
        table = table_of(model)
        columns = [c for c in table.c if c.name != "updated_at"]
        key = table.c.id if "id" in table.c else table.c.customer_id
        statement = select(*columns).where(table.c.shop_id == shop.id).order_by(key)
        tables[model.__name__] = [dict(row._mapping) for row in await fetch_all(session, statement)]
    return tables


@dataclass
class Pair:
    shopify: Connection
    rakuten: Connection
    survivor: Customer
    absorbed: Customer


async def two_customers(session: AsyncSession, shop: Shop) -> Pair:
    """A Shopify buyer and a Rakuten buyer (with a subscription), each with consents, a score
    and a task; the Rakuten one bought first."""
    shopify = await make_connection(session, shop=shop)
    rakuten = await make_connection(session, shop=shop, platform="rakuten")
    await ingest(
        session,
        shopify,
        RecordBatch(
            customers=(
                CustomerRecord("shopify", "c1", display_name="山田 花子", email="h@example.jp"),
            ),
            orders=(order("o1", "c1", at=T0 + timedelta(days=10)),),
        ),
    )
    await ingest(
        session,
        rakuten,
        RecordBatch(
            customers=(
                CustomerRecord("rakuten", "r1", display_name="ヤマダ", phone="090-1234-5678"),
            ),
            orders=(
                order("r-o1", "r1", at=T0, platform="rakuten", total=1000),
                order("r-o2", "r1", at=T0 + timedelta(days=40), platform="rakuten", total=500),
            ),
            subscriptions=(
                SubscriptionRecord("rakuten", "s1", "r1", started_at=T0, source_updated_at=T0),
            ),
        ),
    )
    survivor = await customer_of(session, shopify, "c1")
    absorbed = await customer_of(session, rakuten, "r1")
    for customer, status in ((survivor, ConsentStatus.GRANTED), (absorbed, ConsentStatus.REVOKED)):
        session.add(
            Consent(
                shop_id=shop.id,
                customer_id=customer.id,
                channel=Channel.EMAIL,
                status=status,
                recorded_at=T0,
            )
        )
        session.add(Task(shop_id=shop.id, customer_id=customer.id, kind="call", due_at=T0))
        session.add(
            RiskScore(
                shop_id=shop.id, customer_id=customer.id, probability=0.4, band="medium", as_of=T0
            )
        )
    session.add(
        Consent(shop_id=shop.id, customer_id=absorbed.id, channel=Channel.SMS, recorded_at=T0)
    )
    await session.flush()
    return Pair(shopify, rakuten, survivor, absorbed)


async def owner_of(session: AsyncSession, model: type[SQLModel], **where: Any) -> uuid.UUID:
    table = table_of(model)
    statement = select(table.c.customer_id).where(
        *(table.c[name] == value for name, value in where.items())
    )
    found: uuid.UUID = (await fetch_all(session, statement))[0][0]
    return found


async def test_merge_moves_everything_and_unmerge_restores_both_exactly(
    session: AsyncSession, shop: Shop
) -> None:
    pair = await two_customers(session, shop)
    shop_id = ShopId(shop.id)
    before = await dump(session, shop)
    jobs = RecordingJobs()

    merge = await merge_customers(
        session, shop_id, pair.survivor.id, pair.absorbed.id, actor="api_key:x", now=NOW, jobs=jobs
    )

    survivor = await customer_of(session, pair.rakuten, "r1")
    assert survivor.id == pair.survivor.id
    assert survivor.order_count == 3
    assert survivor.total_spent == 3280 + 1000 + 500
    assert survivor.created_at == T0  # the absorbed customer bought first
    assert survivor.display_name == "山田 花子"
    merged = await dump(session, shop)
    assert [row["id"] for row in merged["Customer"]] == [pair.survivor.id]
    for name in ("Order", "Subscription", "Task", "Consent", "RiskScore"):
        assert {row["customer_id"] for row in merged[name]} == {pair.survivor.id}
    # The survivor's email consent takes the absorbed customer's revocation; SMS moves over.
    consents = {(row["channel"], row["status"]) for row in merged["Consent"]}
    assert consents == {("email", "revoked"), ("sms", "unknown")}
    assert len(merged["RiskScore"]) == 1
    assert merge.identity_ids == [str((await identity_ids(session, pair.rakuten))[0])]
    assert merge.snapshot["customer"]["display_name"] == "ヤマダ"
    assert jobs.sent == [
        (
            Job.RESCORE_CUSTOMERS,
            {"shop_id": str(shop.id), "customer_ids_json": f'["{pair.survivor.id}"]'},
        )
    ]

    await unmerge_customer(session, shop_id, merge.id, actor="api_key:x", now=NOW, jobs=jobs)

    assert await dump(session, shop) == before
    stored = (await session.exec(select_merge(merge.id))).one()
    assert stored.unmerged_at == NOW
    assert len(jobs.sent) == 2
    actions = (await session.exec(select_audit(shop))).all()
    assert sorted(actions) == ["customer.merge", "customer.unmerge"]


def select_merge(merge_id: uuid.UUID) -> SelectOfScalar[CustomerMerge]:
    return (
        select_models(CustomerMerge)
        .where(col(CustomerMerge.id) == merge_id)
        .execution_options(populate_existing=True)
    )


def select_audit(shop: Shop) -> SelectOfScalar[str]:
    return (
        select_models(AuditLog.action)
        .where(col(AuditLog.shop_id) == shop.id)
        .order_by(col(AuditLog.occurred_at))
    )


async def identity_ids(session: AsyncSession, connection: Connection) -> list[uuid.UUID]:
    table = table_of(CustomerIdentity)
    statement = select(table.c.id).where(table.c.connection_id == connection.id)
    return [row[0] for row in await fetch_all(session, statement)]


async def test_orders_ingested_while_merged_go_back_with_their_identity(
    session: AsyncSession, shop: Shop
) -> None:
    pair = await two_customers(session, shop)
    shop_id = ShopId(shop.id)
    merge = await merge_customers(
        session, shop_id, pair.survivor.id, pair.absorbed.id, actor="staff", now=NOW
    )
    later = T0 + timedelta(days=60)
    await ingest(
        session,
        pair.rakuten,
        RecordBatch(orders=(order("r-o3", "r1", at=later, platform="rakuten", total=700),)),
    )
    assert await owner_of(session, Order, external_id="r-o3") == pair.survivor.id

    await unmerge_customer(session, shop_id, merge.id, actor="staff", now=NOW)

    restored = await customer_of(session, pair.rakuten, "r1")
    assert restored.id == pair.absorbed.id
    assert await owner_of(session, Order, external_id="r-o3") == pair.absorbed.id
    assert (restored.order_count, restored.total_spent, restored.last_order_at) == (3, 2200, later)
    survivor = await customer_of(session, pair.shopify, "c1")
    assert (survivor.order_count, survivor.created_at) == (1, pair.survivor.created_at)


async def test_merges_chain_and_each_unmerges_on_its_own(session: AsyncSession, shop: Shop) -> None:
    pair = await two_customers(session, shop)
    amazon = await make_connection(session, shop=shop, platform="amazon")
    await ingest(
        session,
        amazon,
        RecordBatch(orders=(order("a-o1", "a1", at=T0 - timedelta(days=5), platform="amazon"),)),
    )
    third = await customer_of(session, amazon, "a1")
    shop_id = ShopId(shop.id)
    before = await dump(session, shop)

    first = await merge_customers(
        session, shop_id, pair.survivor.id, pair.absorbed.id, actor="staff", now=NOW
    )
    second = await merge_customers(
        session, shop_id, pair.survivor.id, third.id, actor="staff", now=NOW + timedelta(hours=1)
    )
    await unmerge_customer(session, shop_id, first.id, actor="staff", now=NOW)

    assert (await customer_of(session, pair.rakuten, "r1")).id == pair.absorbed.id
    assert (await customer_of(session, amazon, "a1")).id == pair.survivor.id
    survivor = await customer_of(session, pair.shopify, "c1")
    assert survivor.order_count == 2
    assert survivor.created_at == T0 - timedelta(days=5)

    await unmerge_customer(session, shop_id, second.id, actor="staff", now=NOW)

    assert await dump(session, shop) == before


async def test_an_absorbed_survivor_hands_its_merges_on(session: AsyncSession, shop: Shop) -> None:
    pair = await two_customers(session, shop)
    amazon = await make_connection(session, shop=shop, platform="amazon")
    await ingest(session, amazon, RecordBatch(orders=(order("a-o1", "a1", platform="amazon"),)))
    third = await customer_of(session, amazon, "a1")
    shop_id = ShopId(shop.id)
    before = await dump(session, shop)

    inner = await merge_customers(
        session, shop_id, pair.absorbed.id, third.id, actor="staff", now=NOW
    )
    outer = await merge_customers(
        session, shop_id, pair.survivor.id, pair.absorbed.id, actor="staff", now=NOW
    )
    merges = await merges_of_customers(session, shop_id, [pair.survivor.id])
    assert {m.id for m in merges[pair.survivor.id]} == {inner.id, outer.id}
    assert (await customer_of(session, amazon, "a1")).id == pair.survivor.id

    await unmerge_customer(session, shop_id, outer.id, actor="staff", now=NOW)
    assert (await customer_of(session, amazon, "a1")).id == pair.absorbed.id
    await unmerge_customer(session, shop_id, inner.id, actor="staff", now=NOW)

    assert await dump(session, shop) == before


async def test_merge_refusals(session: AsyncSession, shop: Shop) -> None:
    pair = await two_customers(session, shop)
    other = await make_shop(session)
    foreign = await make_connection(session, shop=other)
    await ingest(session, foreign, RecordBatch(orders=(order("x", "x1"),)))
    stranger = await customer_of(session, foreign, "x1")
    shop_id = ShopId(shop.id)

    async def refused(survivor: uuid.UUID, absorbed: uuid.UUID) -> DomainError:
        with pytest.raises(DomainError) as raised:
            await merge_customers(session, shop_id, survivor, absorbed, actor="s", now=NOW)
        return raised.value

    same = await refused(pair.survivor.id, pair.survivor.id)
    assert isinstance(same, MergeWithItself)
    for survivor, absorbed, where in (
        (pair.survivor.id, stranger.id, ("absorbed_id",)),
        (stranger.id, pair.absorbed.id, ("survivor_id",)),
        (pair.survivor.id, uuid.uuid4(), ("absorbed_id",)),
    ):
        error = await refused(survivor, absorbed)
        assert isinstance(error, CustomerNotFound)
        assert error.field == where
    merge = await merge_customers(
        session, shop_id, pair.survivor.id, pair.absorbed.id, actor="s", now=NOW
    )
    assert isinstance(await refused(pair.survivor.id, pair.absorbed.id), CustomerAlreadyMerged)
    assert isinstance(await refused(pair.absorbed.id, pair.survivor.id), CustomerAlreadyMerged)
    with pytest.raises(MergeNotFound):
        await unmerge_customer(session, ShopId(other.id), merge.id, actor="s", now=NOW)
    await unmerge_customer(session, shop_id, merge.id, actor="s", now=NOW)
    with pytest.raises(MergeAlreadyUndone):
        await unmerge_customer(session, shop_id, merge.id, actor="s", now=NOW)


async def test_a_shared_campaign_cycle_blocks_the_merge(session: AsyncSession, shop: Shop) -> None:
    pair = await two_customers(session, shop)
    campaign = Campaign(shop_id=shop.id, name="win-back")
    session.add(campaign)
    await session.flush()
    for customer in (pair.survivor, pair.absorbed):
        session.add(Enrollment(shop_id=shop.id, campaign_id=campaign.id, customer_id=customer.id))
    await session.flush()

    with pytest.raises(MergeBlocked):
        await merge_customers(
            session, ShopId(shop.id), pair.survivor.id, pair.absorbed.id, actor="s", now=NOW
        )


async def test_a_score_snapshot_from_before_shown_signs_gets_them_back(
    session: AsyncSession, shop: Shop
) -> None:
    customer = await make_customer(session, shop=shop)
    reasons: list[dict[str, Any]] = [
        {"sign": "basket", "strength": 0.7, "contribution": 0.1, "evidence": {}},
        {"sign": "interval", "strength": 0.3, "contribution": 0.05, "evidence": {}},
    ]
    session.add(
        RiskScore(
            shop_id=shop.id,
            customer_id=customer.id,
            probability=0.6,
            band="medium",
            reasons=reasons,
            shown_signs=shown_mask(reasons),
            as_of=T0,
        )
    )
    await session.flush()
    snapshot = await take_risk_score(session, ShopId(shop.id), customer.id)
    assert snapshot is not None
    del snapshot["shown_signs"]  # what a merge recorded before migration 0008 holds

    await restore_risk_score(session, snapshot)

    score = table_of(RiskScore)
    (row,) = await fetch_all(
        session, select(score.c.shown_signs).where(score.c.customer_id == customer.id)
    )
    assert row[0] == sign_mask([Sign.BASKET])
