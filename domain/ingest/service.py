"""The one write path for canonical records, whatever their source (mall sync, webhook, CSV)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlmodel import select

from domain.connection.models import Connection
from domain.db import AsyncSession, utcnow
from domain.errors import InvalidInput, NotFound
from domain.ids import ConnectionId, CustomerId, ShopId
from domain.ingest.aggregates import recompute_customer_aggregates, set_new_customers_aggregates
from domain.ingest.context import Counts, IngestContext, Touched
from domain.ingest.customers import insert_new_customers, upsert_customers
from domain.ingest.orders import ensure_new_products, first_products, plan_orders, write_orders
from domain.ingest.statements import dialect_name
from domain.ingest.subscriptions import insert_subscription_events, upsert_subscriptions
from domain.platforms import Platform, RecordBatch
from domain.shop.models import Shop

# The `external_account_id` of connections that only receive CSV imports: nothing to sync.
IMPORT_ACCOUNT_ID = "csv-import"


@dataclass(frozen=True, slots=True)
class IngestResult:
    customers: Counts
    orders: Counts
    subscriptions: Counts
    subscription_events: Counts
    # Customers whose data changed: their signs and risk need recomputing.
    touched_customer_ids: frozenset[CustomerId]


async def _context(
    session: AsyncSession, shop_id: ShopId, connection_id: ConnectionId
) -> IngestContext:
    statement = (
        select(Connection.platform, Shop.currency)
        .join(Shop, Shop.id == Connection.shop_id)  # type: ignore[arg-type]
        .where(Connection.shop_id == shop_id, Connection.id == connection_id)
    )
    found = (await session.exec(statement)).first()
    if found is None:
        raise NotFound("no such connection", field="connection")
    platform, currency = found
    return IngestContext(shop_id, connection_id, platform, currency, utcnow())


def _referenced_customers(batch: RecordBatch) -> dict[str, datetime]:
    earliest: dict[str, datetime] = {}
    for key, at in [
        *((order.customer_external_id, order.ordered_at) for order in batch.orders),
        *((sub.customer_external_id, sub.started_at) for sub in batch.subscriptions),
    ]:
        if key not in earliest or at < earliest[key]:
            earliest[key] = at
    return earliest


def _check_platform(batch: RecordBatch, platform: str) -> None:
    for records in (batch.customers, batch.orders, batch.subscriptions, batch.subscription_events):
        for record in records:
            if record.platform != platform:
                raise InvalidInput(
                    f"a {record.platform} record cannot be stored on a {platform} connection",
                    field="platform",
                )


async def ingest_batch(
    session: AsyncSession,
    shop_id: ShopId,
    connection_id: ConnectionId,
    batch: RecordBatch,
    *,
    with_lines: bool = True,
) -> IngestResult:
    """Upsert a batch of one connection's records, set-based; replaying a batch changes nothing.

    Customers, orders and subscriptions are keyed by (connection, external id); a version with
    an older `source_updated_at` never overwrites a newer one. Unknown customers referenced by
    orders or subscriptions are created bare. A new identity joins the shop's customer that
    has its email or phone (see `domain.ingest.linking`); orders and subscriptions record the
    identity that bought. Events referring to subscriptions neither in the
    batch nor stored raise `InvalidInput`. Order aggregates of every customer whose orders
    changed are recomputed. `with_lines=False`: the orders carry no line data, so orders
    arriving without lines keep their stored ones. Flushes, never commits.
    """
    context = await _context(session, shop_id, connection_id)
    _check_platform(batch, context.platform)
    if dialect_name(session) == "postgresql":
        # A bulk load grows tables within one transaction: a generic plan cached for a prepared
        # statement while they were small (nested loops over seq scans) would turn quadratic.
        connection = await session.connection()
        await connection.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    touched = Touched()
    buyers, customers, new_customers = await upsert_customers(
        session, context, batch.customers, _referenced_customers(batch), touched
    )
    plan = await plan_orders(session, context, batch.orders, buyers)
    # A customer made here has no orders but this batch's new ones, unless a changed order
    # moves to it: its row is written with its aggregates rather than updated after them.
    receiving = plan.receiving_changed
    products = await ensure_new_products(session, context, plan)
    settled = set_new_customers_aggregates(
        [row for row in new_customers.customers if row["id"] not in receiving],
        plan.new_orders,
        first_products(plan, products),
        currency=context.currency,
    )
    await insert_new_customers(session, new_customers)
    orders = await write_orders(session, context, plan, products, touched, with_lines=with_lines)
    refs, subscriptions = await upsert_subscriptions(
        session, context, batch.subscriptions, buyers, touched
    )
    events = await insert_subscription_events(
        session, context, batch.subscription_events, refs, touched
    )
    await recompute_customer_aggregates(
        session, shop_id, touched.aggregates - settled, currency=context.currency
    )
    return IngestResult(
        customers=customers,
        orders=orders,
        subscriptions=subscriptions,
        subscription_events=events,
        touched_customer_ids=frozenset(touched.customers),
    )


async def get_or_create_import_connection(
    session: AsyncSession, shop_id: ShopId, platform: str
) -> Connection:
    """The shop's connection that receives CSV imports of one mall's data, created on first use."""
    statement = select(Connection).where(
        Connection.shop_id == shop_id,
        Connection.platform == platform,
        Connection.external_account_id == IMPORT_ACCOUNT_ID,
    )
    connection = (await session.exec(statement)).first()
    if connection is None:
        try:
            label = Platform(platform).name.capitalize()
        except ValueError:
            label = platform
        connection = Connection(
            shop_id=shop_id,
            platform=platform,
            name=f"CSV import ({label})",
            external_account_id=IMPORT_ACCOUNT_ID,
        )
        session.add(connection)
        await session.flush()
    return connection
