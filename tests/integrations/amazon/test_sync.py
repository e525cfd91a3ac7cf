from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from domain.order.models import OrderStatus
from domain.platforms import PlatformAuthRevoked, PlatformRejected, SyncCursor
from integrations.amazon.platform import AmazonPlatform
from tests.fakes.amazon import order_item
from tests.integrations.amazon.harness import Amazon, Run, seed, sync


async def test_backfill_reads_every_order_page_by_page(amazon: Amazon) -> None:
    ids = seed(amazon.store, 25)
    amazon.store.page_size = 10

    run = await sync(amazon.platform, amazon.account())

    assert len(run.pages) == 3
    assert sorted(run.order_ids) == sorted(ids)
    assert run.rejected == []
    assert all(order.lines and order.total_amount == 1980 for order in run.batch.orders)
    assert {order.status for order in run.batch.orders} == {OrderStatus.FULFILLED}
    assert len({order.customer_external_id for order in run.batch.orders}) == 5
    # Mid-pass cursors carry the pass; the last one only the high-water mark.
    assert set(run.pages[0].cursor) == {"last_updated_after", "window_end", "next_token"}
    assert run.cursor == {"last_updated_after": run.pages[0].cursor["window_end"]}
    assert sum(page.stats.requests for page in run.pages) >= 3 + 25
    assert amazon.store.throttled == {}


async def test_next_tokens_are_url_encoded_and_sent_alone(amazon: Amazon) -> None:
    seed(amazon.store, 12)
    amazon.store.page_size = 4

    run = await sync(amazon.platform, amazon.account())

    assert len(run.order_ids) == 12
    tokens = [
        dict(entry.params)["NextToken"]
        for entry in amazon.store.log
        if entry.operation == "getOrders" and "NextToken" in dict(entry.params)
    ]
    assert len(tokens) == 2
    assert all(set("+/=") & set(token) for token in tokens)
    for entry in amazon.store.log:
        if entry.operation == "getOrders" and "NextToken" in dict(entry.params):
            assert {name for name, _ in entry.params} == {"MarketplaceIds", "NextToken"}


async def test_window_ends_at_least_two_minutes_before_now(amazon: Amazon) -> None:
    seed(amazon.store, 3)
    fresh = amazon.store.add_order(items=[order_item("B0FRESH001")])  # changed just now

    first = await sync(amazon.platform, amazon.account())
    amazon.clock.advance(150)
    second = await sync(amazon.platform, amazon.account(), first.cursor)

    assert fresh.order_id not in first.order_ids
    assert fresh.order_id in second.order_ids
    firsts = [e for e in amazon.store.log if e.operation == "getOrders"]
    assert all(entry.status == 200 for entry in firsts)
    for entry in firsts:
        before = dict(entry.params).get("LastUpdatedBefore")
        if before is not None:
            assert before <= (entry.at - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_later_cancellation_is_caught_by_the_next_incremental_sync(amazon: Amazon) -> None:
    ids = seed(amazon.store, 4, days_ago=2)
    first = await sync(amazon.platform, amazon.account())
    amazon.clock.advance(3600)
    amazon.store.change_order(ids[1], status="Canceled")
    amazon.clock.advance(180)

    second = await sync(amazon.platform, amazon.account(), first.cursor)

    assert [o.status for o in first.batch.orders if o.external_id == ids[1]] == [
        OrderStatus.FULFILLED
    ]
    changed = [o for o in second.batch.orders if o.external_id == ids[1]]
    assert [o.status for o in changed] == [OrderStatus.CANCELLED]
    assert changed[0].source_updated_at == amazon.store.orders[ids[1]].updated_at
    # The overlap re-reads only the last minutes, not the history.
    assert ids[0] not in second.order_ids


async def test_pending_orders_wait_until_they_have_amounts(amazon: Amazon) -> None:
    pending = amazon.store.add_order(
        items=[order_item("B0PEND0001", quantity=2, price=None)],
        status="Pending",
        total=None,
        updated_at=amazon.clock.now() - timedelta(hours=1),
    )
    first = await sync(amazon.platform, amazon.account())
    amazon.store.change_order(
        pending.order_id,
        status="Unshipped",
        total="4200.00",
        items=[order_item("B0PEND0001", quantity=2, price="4200.00")],
    )
    amazon.clock.advance(180)

    second = await sync(amazon.platform, amazon.account(), first.cursor)

    assert first.order_ids == []
    assert first.rejected == []
    # No getOrderItems budget is spent on an order that cannot be mapped yet.
    assert not any(e.operation == "getOrderItems" for e in amazon.store.log[:2])
    [order] = second.batch.orders
    assert order.status is OrderStatus.OPEN
    assert order.total_amount == 4200
    assert order.lines[0].quantity == 2
    assert order.lines[0].unit_price == 2100


async def test_invalid_refresh_token_is_auth_revoked(amazon: Amazon) -> None:
    seed(amazon.store, 2)
    account = amazon.account(refresh_token="Atzr|revoked")

    with pytest.raises(PlatformAuthRevoked, match="invalid_grant"):
        await sync(amazon.platform, account)
    with pytest.raises(PlatformAuthRevoked):
        await amazon.platform.check_account(account.credentials, amazon.base_url)
    assert amazon.store.requests == 0


async def test_refresh_token_revoked_mid_sync_is_auth_revoked(amazon: Amazon) -> None:
    seed(amazon.store, 6)
    amazon.store.page_size = 3
    account = amazon.account()
    pages = amazon.platform.sync_pages(account, {}, None)
    await anext(pages)
    amazon.store.revoke_refresh_tokens()
    amazon.store.invalidate_access_tokens()

    with pytest.raises(PlatformAuthRevoked):
        await anext(pages)
    # One 403, then the refresh is refused: no retry storm against a dead grant.
    assert [e.status for e in amazon.store.log].count(403) == 1


async def test_check_account_names_the_seller_and_store(amazon: Amazon) -> None:
    info = await amazon.platform.check_account(amazon.credentials(), amazon.base_url)

    assert info.external_account_id == amazon.store.seller_id
    assert info.name == "Kizuki Tea Store"
    assert amazon.store.token_exchanges == 1
    [entry] = amazon.store.log
    assert entry.operation == "getMarketplaceParticipations"


def test_fake_tokens_survive_only_when_encoded() -> None:
    from tests.fakes.amazon.app import decode_token, encode_token

    token = encode_token({"query": {"a": "b"}, "after": ["x", "y"]})
    unencoded = dict(parse_qsl(urlsplit(f"http://x/?NextToken={token}").query))["NextToken"]

    assert decode_token(token) == {"query": {"a": "b"}, "after": ["x", "y"]}
    assert decode_token(unencoded) is None


async def test_fake_refuses_what_amazon_refuses(amazon: Amazon) -> None:
    credentials = amazon.credentials()
    grant = await amazon.http.post(
        f"{amazon.base_url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": credentials["refresh_token"],
            "client_id": credentials["lwa_client_id"],
            "client_secret": credentials["lwa_client_secret"],
        },
    )
    headers = {"x-amz-access-token": grant.json()["access_token"]}
    url = f"{amazon.base_url}/orders/v0/orders"
    now = amazon.clock.now()
    late = (now - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    plus = "2026-05-01T10:00:00+09:00"

    too_late = await amazon.http.get(
        url,
        params={
            "MarketplaceIds": "A1VC38T7YXB528",
            "LastUpdatedAfter": "2026-05-01T00:00:00Z",
            "LastUpdatedBefore": late,
        },
        headers=headers,
    )
    raw_plus = await amazon.http.get(
        f"{url}?MarketplaceIds=A1VC38T7YXB528&LastUpdatedAfter={plus}", headers=headers
    )
    both = await amazon.http.get(
        url,
        params={
            "MarketplaceIds": "A1VC38T7YXB528",
            "LastUpdatedAfter": "2026-05-01T00:00:00Z",
            "CreatedAfter": "2026-05-01T00:00:00Z",
        },
        headers=headers,
    )
    unauthorised = await amazon.http.get(url, params={"MarketplaceIds": "A1VC38T7YXB528"})

    assert too_late.status_code == 400
    assert "at least 2 minutes" in too_late.json()["errors"][0]["message"]
    assert raw_plus.status_code == 400
    assert raw_plus.json()["errors"][0]["code"] == "InvalidInput"
    assert both.status_code == 400
    assert unauthorised.status_code == 403


async def test_entry_point_builds_the_amazon_platform() -> None:
    from importlib.metadata import entry_points

    [entry] = [e for e in entry_points(group="kizuki.integrations") if e.name == "amazon"]
    async with httpx.AsyncClient() as http:
        platform = entry.load()(http)

    assert isinstance(platform, AmazonPlatform)
    assert platform.name == "amazon"


async def test_order_items_follow_their_own_next_token(amazon: Amazon) -> None:
    at = amazon.clock.now() - timedelta(days=1)
    order = amazon.store.add_order(
        items=[order_item(f"B0ITEM000{i}", price="1000.00") for i in range(3)],
        total="3000.00",
        updated_at=at,
    )
    amazon.store.items_page_size = 1

    run = await sync(amazon.platform, amazon.account())

    [mapped] = run.batch.orders
    assert mapped.external_id == order.order_id
    assert [line.product_external_id for line in mapped.lines] == [
        "B0ITEM0000",
        "B0ITEM0001",
        "B0ITEM0002",
    ]
    item_calls = [e for e in amazon.store.log if e.operation == "getOrderItems"]
    assert [("NextToken" in dict(e.params)) for e in item_calls] == [False, True, True]
    assert run.pages[0].stats.requests == 1 + 1 + 3  # LWA, getOrders, three item pages


async def test_since_rereads_from_that_moment_whatever_the_cursor(amazon: Amazon) -> None:
    ids = seed(amazon.store, 10, days_ago=10)
    first = await sync(amazon.platform, amazon.account())
    amazon.clock.advance(3600)

    again = await sync_since(amazon, first.cursor, amazon.clock.now() - timedelta(days=20))
    nothing_new = await sync(amazon.platform, amazon.account(), first.cursor)

    assert sorted(again.order_ids) == sorted(ids)
    assert nothing_new.order_ids == []


async def sync_since(amazon: Amazon, cursor: SyncCursor, since: datetime) -> Run:
    pages = [p async for p in amazon.platform.sync_pages(amazon.account(), cursor, since)]
    return Run(pages)


async def test_check_account_outside_the_marketplace_is_rejected(amazon: Amazon) -> None:
    credentials = amazon.credentials(marketplace_id="A1PA6795UKMFR9")

    with pytest.raises(PlatformRejected, match="A1PA6795UKMFR9"):
        await amazon.platform.check_account(credentials, amazon.base_url)
