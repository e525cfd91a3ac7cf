import codecs
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.errors import ImportRejected, InvalidInput
from domain.ids import ShopId
from domain.importing import import_directory
from domain.shop.models import Shop
from tests.domain.importing.files import ALL_FILES, row_counts, write_files

ORDERS = ALL_FILES["orders.csv"]
USD_ORDER = "shopify,1003,c2,2024-03-10T00:00:00Z,2999,USD,,,,"


def edit(name: str, old: str, new: str) -> dict[str, str | bytes]:
    assert old in ALL_FILES[name]
    return {**ALL_FILES, name: ALL_FILES[name].replace(old, new)}


def append(name: str, row: str) -> dict[str, str | bytes]:
    return {**ALL_FILES, name: ALL_FILES[name] + row + "\n"}


SUBSCRIPTION_COLUMNS = (
    "mall, subscription_id, customer_id, started_at, status, interval_days, product, "
    "cancelled_at, next_delivery_at, updated_at"
)

CASES: dict[str, tuple[dict[str, str | bytes], list[str]]] = {
    "decimal amount": (
        edit("orders.csv", "1002,c1,2024-04-01,3280", "1002,c1,2024-04-01,3280.5"),
        [
            'orders.csv:3: total_amount: "3280.5" is not an integer',
            'order_lines.csv:3: order_id: order "1002" is rejected (orders.csv:3)',
        ],
    ),
    "unknown mall": (
        edit("orders.csv", USD_ORDER, USD_ORDER.replace("shopify", "yahoo")),
        ['orders.csv:5: mall: "yahoo" is not a known mall (shopify, rakuten, amazon)'],
    ),
    "negative quantity": (
        edit("order_lines.csv", "青汁 30包,1,", "青汁 30包,-1,"),
        ['order_lines.csv:4: quantity: "-1" must not be negative'],
    ),
    "time without offset": (
        edit("orders.csv", "2024-03-10T00:00:00Z", "2024-03-10T00:00:00"),
        [
            'orders.csv:5: ordered_at: "2024-03-10T00:00:00" has no UTC offset; add one '
            "(e.g. 2024-03-10T00:00:00+09:00) or give a plain date"
        ],
    ),
    "not a time": (
        edit("orders.csv", "2024-03-10T00:00:00Z", "10/03/2024"),
        ['orders.csv:5: ordered_at: "10/03/2024" is not an ISO 8601 date or time'],
    ),
    "unknown currency": (
        edit("orders.csv", ",USD,", ",USS,"),
        ['orders.csv:5: currency: "USS" is not an ISO 4217 currency code'],
    ),
    "line of an unknown order": (
        append("order_lines.csv", "shopify,9999,1,,,,1,100,100"),
        ['order_lines.csv:5: order_id: unknown order "9999" (no valid row in orders.csv)'],
    ),
    "line of an order of another mall": (
        append("order_lines.csv", "amazon,1001,1,,,,1,100,100"),
        ['order_lines.csv:5: order_id: unknown order "1001" (no valid row in orders.csv)'],
    ),
    "event of an unknown subscription": (
        append("subscription_events.csv", "shopify,nope,paused,2024-06-01,,"),
        ['subscription_events.csv:4: subscription_id: unknown subscription "nope"'],
    ),
    "event of a rejected subscription": (
        edit("subscriptions.csv", ",30,", ",0,"),
        [
            'subscriptions.csv:2: interval_days: "0" must be positive',
            'subscription_events.csv:2: subscription_id: subscription "sub-1" is rejected '
            "(subscriptions.csv:2)",
            'subscription_events.csv:3: subscription_id: subscription "sub-1" is rejected '
            "(subscriptions.csv:2)",
        ],
    ),
    "duplicate order": (
        append("orders.csv", USD_ORDER),
        ['orders.csv:6: order_id: duplicate "1003" (first on line 5)'],
    ),
    "duplicate customer": (
        append("customers.csv", "shopify,c1,別人,,,,,"),
        ['customers.csv:4: customer_id: duplicate "c1" (first on line 2)'],
    ),
    "duplicate line number": (
        append("order_lines.csv", "shopify,1001,1,,,,1,100,100"),
        ['order_lines.csv:5: line: duplicate line 1 of order "1001" (first on line 2)'],
    ),
    "duplicate event": (
        append("subscription_events.csv", "shopify,sub-1,paused,2024-06-01,ev-2,"),
        [
            'subscription_events.csv:4: event_id: duplicate event "ev-2" of subscription '
            '"sub-1" (first on line 3)'
        ],
    ),
    "missing value": (
        edit("orders.csv", USD_ORDER, USD_ORDER.replace(",c2,", ",,")),
        ["orders.csv:5: customer_id: required value is missing"],
    ),
    "wrong number of fields": (
        edit("orders.csv", USD_ORDER, USD_ORDER + ","),
        ["orders.csv:5: row: has 11 fields, the header has 10"],
    ),
    "refund above total": (
        edit("orders.csv", "6560,JPY,fulfilled,0,", "6560,JPY,fulfilled,7000,"),
        [
            'orders.csv:2: refunded_amount: "7000" is more than total_amount 6560',
            'order_lines.csv:2: order_id: order "1001" is rejected (orders.csv:2)',
        ],
    ),
    "unknown status": (
        edit("orders.csv", ",cancelled,", ",shipped,"),
        [
            'orders.csv:4: status: "shipped" is not one of open, fulfilled, cancelled, refunded',
            'order_lines.csv:4: order_id: order "R-1" is rejected (orders.csv:4)',
        ],
    ),
    "bad email and phone": (
        edit("customers.csv", "Hanako@Example.jp,090-1234-5678", "hanako@,12345"),
        [
            'customers.csv:2: email: "hanako@" is not an email address',
            'customers.csv:2: phone: "12345" is not a phone number (Japanese or +country code)',
        ],
    ),
    "missing required column": (
        {"orders.csv": "mall,order_id,customer_id,ordered_at\nshopify,1,c1,2024-01-01\n"},
        ['orders.csv:1: header: missing required column "total_amount"'],
    ),
    "unknown column": (
        edit("subscriptions.csv", "updated_at\n", "updated_at,plan\n"),
        [f'subscriptions.csv:1: header: unknown column "plan" (expected: {SUBSCRIPTION_COLUMNS})'],
    ),
    "repeated column": (
        edit("customers.csv", "updated_at\n", "updated_at,name\n"),
        ['customers.csv:1: header: column "name" appears twice'],
    ),
    "empty file": (
        {**ALL_FILES, "customers.csv": ""},
        ["customers.csv:1: header: the file is empty"],
    ),
    "Shift_JIS file": (
        {**ALL_FILES, "customers.csv": "mall,customer_id,name\nshopify,c1,山田\n".encode("cp932")},
        [
            "customers.csv:2: encoding: byte 0x8E at position 12 is not UTF-8; save the file "
            "as UTF-8 (Shift_JIS/CP932 is not read)"
        ],
    ),
    "bad quoting": (
        {**ALL_FILES, "customers.csv": 'mall,customer_id,name\nshopify,c1,"山田"x\n'},
        ["customers.csv:2: row: ',' expected after '\"'"],
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_bad_input_is_rejected_whole(
    case: str,
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    shop: Shop,
    tmp_path: Path,
) -> None:
    files, expected = CASES[case]
    directory = write_files(tmp_path / "in", files)

    with pytest.raises(ImportRejected) as rejected:
        await import_directory(sessions, ShopId(shop.id), directory)

    assert rejected.value.problems == expected
    assert set((await row_counts(session, shop)).values()) == {0}


async def test_an_encoding_error_is_fatal_even_when_skipping(
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    shop: Shop,
    tmp_path: Path,
) -> None:
    late = ORDERS + "shopify,1004,c1,2024-05-01,1000,,,,,\nshopify,1005,山田,2024-05-01,1,,,,,\n"
    files: dict[str, str | bytes] = {"orders.csv": late.encode("cp932")}
    directory = write_files(tmp_path / "in", files)
    with pytest.raises(ImportRejected, match=r"orders.csv:7: encoding: byte 0x8E"):
        await import_directory(
            sessions, ShopId(shop.id), directory, skip_invalid=True, batch_size=2
        )
    assert set((await row_counts(session, shop)).values()) == {0}


async def test_a_byte_order_mark_is_accepted(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, tmp_path: Path
) -> None:
    files: dict[str, str | bytes] = {"orders.csv": codecs.BOM_UTF8 + ORDERS.encode()}
    report = await import_directory(sessions, ShopId(shop.id), write_files(tmp_path, files))
    assert report.orders.inserted == 4


async def test_a_directory_without_orders_is_refused(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, tmp_path: Path
) -> None:
    directory = write_files(tmp_path / "in", {"customers.csv": ALL_FILES["customers.csv"]})
    with pytest.raises(InvalidInput, match=r"has no orders\.csv"):
        await import_directory(sessions, ShopId(shop.id), directory)
    with pytest.raises(InvalidInput, match="is not a directory"):
        await import_directory(sessions, ShopId(shop.id), tmp_path / "missing")
    with pytest.raises(InvalidInput, match="unknown time zone"):
        await import_directory(
            sessions,
            ShopId(shop.id),
            write_files(tmp_path / "ok", {"orders.csv": ORDERS}),
            timezone="Mars/Olympus",
        )
