import csv
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select

from domain.db import AsyncSession
from domain.errors import ImportRejected
from domain.ids import ShopId
from domain.importing import import_directory
from domain.ingest import Counts
from domain.order.models import Order
from domain.shop.models import Shop
from tests.domain.importing.files import ALL_FILES, row_counts, write_files


def broken_files() -> dict[str, str | bytes]:
    return {
        **ALL_FILES,
        "customers.csv": ALL_FILES["customers.csv"] + "amazon,a1,,not-an-email,,,,\n",
        "orders.csv": ALL_FILES["orders.csv"].replace(
            "1002,c1,2024-04-01,3280", "1002,c1,2024-04-01,3280.5"
        ),
        "subscription_events.csv": ALL_FILES["subscription_events.csv"]
        + "shopify,nope,paused,2024-06-01,,\n",
    }


async def test_valid_rows_are_imported_and_the_rest_written_aside(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(tmp_path / "in", broken_files())
    rejected = tmp_path / "rejected.csv"

    report = await import_directory(
        sessions, ShopId(shop.id), directory, skip_invalid=True, rejected_path=rejected
    )

    assert report.rows_rejected == 4
    assert report.problems == (
        'customers.csv:4: email: "not-an-email" is not an email address',
        'orders.csv:3: total_amount: "3280.5" is not an integer',
        'order_lines.csv:3: order_id: order "1002" is rejected (orders.csv:3)',
        'subscription_events.csv:4: subscription_id: unknown subscription "nope"',
    )
    assert report.orders == Counts(inserted=3)
    assert report.subscription_events == Counts(inserted=2)
    assert report.rejected_path == rejected
    external_ids = (
        await session.exec(select(Order.external_id).order_by(col(Order.external_id)))
    ).all()
    assert list(external_ids) == ["1001", "1003", "R-1"]
    counts = await row_counts(session, shop)
    assert (counts["Customer"], counts["OrderLine"]) == (3, 2)

    with rejected.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["source_file"], row["source_line"], row["error"]) for row in rows] == [
        ("customers.csv", "4", 'email: "not-an-email" is not an email address'),
        ("orders.csv", "3", 'total_amount: "3280.5" is not an integer'),
        ("order_lines.csv", "3", 'order_id: order "1002" is rejected (orders.csv:3)'),
        ("subscription_events.csv", "4", 'subscription_id: unknown subscription "nope"'),
    ]
    # The original cells are kept, so a row can be fixed and imported again.
    assert (rows[1]["mall"], rows[1]["order_id"], rows[1]["total_amount"]) == (
        "shopify",
        "1002",
        "3280.5",
    )
    assert (rows[2]["order_id"], rows[2]["line"], rows[2]["title"]) == ("1002", "1", "化粧水 150ml")
    assert rows[3]["kind"] == "paused"


async def test_skipping_again_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(tmp_path / "in", broken_files())
    await import_directory(sessions, ShopId(shop.id), directory, skip_invalid=True)
    before = await row_counts(session, shop)

    again = await import_directory(sessions, ShopId(shop.id), directory, skip_invalid=True)

    assert (again.orders, again.customers) == (Counts(unchanged=3), Counts(unchanged=2))
    assert again.rows_rejected == 4
    assert again.rejected_path is None
    assert await row_counts(session, shop) == before


async def test_without_skipping_the_rejected_rows_are_still_written(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(tmp_path / "in", broken_files())
    rejected = tmp_path / "rejected.csv"
    with pytest.raises(ImportRejected):
        await import_directory(sessions, ShopId(shop.id), directory, rejected_path=rejected)
    with rejected.open(encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4


async def test_a_clean_import_leaves_an_empty_rejected_file(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, tmp_path: Path
) -> None:
    rejected = tmp_path / "rejected.csv"
    rejected.write_text("stale\n", encoding="utf-8")
    directory = write_files(tmp_path / "in", dict(ALL_FILES))
    await import_directory(
        sessions, ShopId(shop.id), directory, skip_invalid=True, rejected_path=rejected
    )
    assert rejected.read_text(encoding="utf-8").splitlines()[0].startswith("source_file,")
    assert len(rejected.read_text(encoding="utf-8").splitlines()) == 1
