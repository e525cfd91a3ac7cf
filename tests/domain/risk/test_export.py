import csv
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.ids import ShopId
from domain.risk.export import COLUMNS, export_scores
from domain.risk.service import recompute_risk
from tests.domain.risk.shops import AS_OF, add_customer, add_order, edge_case_shop

# AS_OF is 2025-06-01 09:00 in Tokyo; the export is as of the start of that day there.
DAY = date(2025, 6, 1)


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


async def test_the_file_has_a_row_per_customer_known_by_then(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, tmp_path: Path
) -> None:
    edge = await edge_case_shop(session)
    await session.commit()
    out = tmp_path / "scores.csv"

    written = await export_scores(sessions, ShopId(edge.shop.id), as_of=DAY, out=out)

    rows = _read(out)
    assert written == len(rows) == len(edge.customers)
    assert list(rows[0]) == list(COLUMNS)
    by_id = {row["external_id"]: row for row in rows}
    assert set(by_id) == {f"ext-{name}" for name in edge.customers}
    assert {row["mall"] for row in rows} == {"shopify"}
    assert by_id["ext-none"] == {
        "external_id": "ext-none",
        "mall": "shopify",
        "probability": "",
        "expected_purchases": "",
        "band": "unscored",
        "top_reason": "no_orders",
        "top_reason_summary": "no orders before the cut-off",
    }
    assert (by_id["ext-cancelled"]["band"], by_id["ext-cancelled"]["top_reason"]) == (
        "unscored",
        "no_purchases",
    )
    one = by_id["ext-one"]
    assert 0.0 < float(one["probability"]) < 1.0
    assert float(one["expected_purchases"]) >= 0.0
    assert one["band"] in {"low", "medium", "high", "critical"}
    assert one["top_reason"] in {"interval", "basket"}
    assert one["top_reason_summary"]


async def test_later_orders_and_stored_scores_change_nothing(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, tmp_path: Path
) -> None:
    edge = await edge_case_shop(session)
    await session.commit()
    shop_id = ShopId(edge.shop.id)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    await export_scores(sessions, shop_id, as_of=DAY, out=first, horizon_days=60)

    # On June 1st and later: a new order, a new customer; and scores stored meanwhile.
    start = AS_OF - timedelta(hours=9)
    await add_order(session, edge.customers["one"], edge.connection, at=start)
    await add_order(session, edge.customers["none"], edge.connection, at=start + timedelta(days=3))
    late = await add_customer(session, edge.shop, edge.connection, "late")
    late.created_at = start + timedelta(days=1)
    await recompute_risk(session, shop_id, as_of=start + timedelta(days=5))
    await session.commit()
    await export_scores(sessions, shop_id, as_of=DAY, out=second, horizon_days=60)

    assert second.read_bytes() == first.read_bytes()
    later = tmp_path / "later.csv"
    await export_scores(sessions, shop_id, as_of=DAY + timedelta(days=2), out=later)
    assert later.read_bytes() != first.read_bytes()
    assert len(_read(later)) == len(edge.customers) + 1


async def test_bad_arguments_write_no_file(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, tmp_path: Path
) -> None:
    edge = await edge_case_shop(session, regulars=1)
    await session.commit()
    shop_id = ShopId(edge.shop.id)

    with pytest.raises(InvalidInput, match="horizon"):
        await export_scores(sessions, shop_id, as_of=DAY, out=tmp_path / "a.csv", horizon_days=0)
    with pytest.raises(InvalidInput, match="no such directory"):
        await export_scores(sessions, shop_id, as_of=DAY, out=tmp_path / "missing" / "b.csv")
    assert _files(tmp_path) == []
