"""Data migrations: each backfill gives what the code that now keeps the column would."""

import importlib.util
from pathlib import Path
from types import ModuleType

from sqlalchemy import text, update

from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import dialect_name, table_of
from domain.risk.models import RiskScore
from domain.risk.service import recompute_risk
from domain.shop.models import Shop
from tests.domain.ingest.records import customer_aggregates, ingest, mixed_batches
from tests.domain.risk.shops import AS_OF, current_scores, edge_case_shop
from tests.factories.customer import make_connection

VERSIONS = Path(__file__).resolve().parents[2] / "alembic" / "versions"


def _version(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, VERSIONS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_0004_backfills_the_first_product_ingest_keeps(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    for batch in mixed_batches(7):
        await ingest(session, connection, batch)
    kept = await customer_aggregates(session)
    assert sum(row[-1] is not None for row in kept.values()) >= 5
    customer = table_of(Customer)
    await session.exec(update(customer).values(first_product_id=None))

    backfill = str(_version("0004_customer_first_product").BACKFILL)
    await (await session.connection()).execute(text(backfill))

    assert await customer_aggregates(session) == kept


async def test_0008_fills_the_shown_signs_the_scorer_writes(session: AsyncSession) -> None:
    edge = await edge_case_shop(session)
    await recompute_risk(session, ShopId(edge.shop.id), as_of=AS_OF)
    written = {
        key: score.shown_signs for key, score in (await current_scores(session, edge.shop)).items()
    }
    assert any(written.values())
    await session.exec(update(table_of(RiskScore)).values(shown_signs=0))

    fill = _version("0008_risk_shown_signs").fill(dialect_name(session))
    await (await session.connection()).execute(text(fill))

    filled = {
        key: score.shown_signs for key, score in (await current_scores(session, edge.shop)).items()
    }
    assert filled == written
