import base64
import re
from datetime import timedelta
from importlib.metadata import entry_points

import httpx
import pytest

from domain.platforms import (
    AccountInfo,
    PlatformAccount,
    PlatformAuthRevoked,
    PlatformRejected,
    StorePlatform,
)
from integrations.rakuten.client import (
    GET_ORDER_VERSION,
    RakutenClient,
    RakutenCredentials,
)
from integrations.rakuten.platform import RakutenPlatform, finished_cursor
from tests.fakes.rakuten.clock import FakeClock
from tests.fakes.rakuten.store import RakutenStore
from tests.integrations.rakuten.conftest import NOW
from tests.integrations.rakuten.harness import run_sync

RMS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0900$")


def test_the_esa_header_is_base64_of_secret_colon_key() -> None:
    credentials = RakutenCredentials("SP1_secret", "SL1_license", "shop")
    expected = base64.b64encode(b"SP1_secret:SL1_license").decode()
    assert credentials.authorization() == f"ESA {expected}"


def test_the_platform_is_registered_and_conforms() -> None:
    [entry] = [e for e in entry_points(group="kizuki.integrations") if e.name == "rakuten"]
    factory = entry.load()
    platform: StorePlatform = factory(httpx.AsyncClient())
    assert platform.name == "rakuten"
    assert isinstance(platform, RakutenPlatform)


async def test_requests_use_rms_formats_and_limits(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    store.add_spread(1_050, NOW - timedelta(days=5), NOW - timedelta(days=4))
    run = await run_sync(platform, account, finished_cursor(NOW), since=NOW - timedelta(days=6))
    assert run.error is None
    searches = [r for r in store.requests if r.path.endswith("/searchOrder/")]
    gets = [r for r in store.requests if r.path.endswith("/getOrder/")]
    assert len(searches) == 2  # 1,050 orders: two pages of at most 1,000
    for search in searches:
        assert search.body["dateType"] == 1
        assert RMS_TIME.match(str(search.body["startDatetime"]))
        assert RMS_TIME.match(str(search.body["endDatetime"]))
        pagination = search.body["PaginationRequestModel"]
        assert isinstance(pagination, dict)
        assert pagination["requestRecordsAmount"] == 1_000
    assert [s.body["PaginationRequestModel"] for s in searches][1] == {
        "requestRecordsAmount": 1_000,
        "requestPage": 2,
        "SortModelList": [{"sortColumn": 1, "sortDirection": 1}],
    }
    assert len(gets) == 11
    for get in gets:
        numbers = get.body["orderNumberList"]
        assert isinstance(numbers, list)
        assert 0 < len(numbers) <= 100
        assert get.body["version"] == GET_ORDER_VERSION == 10
    assert run.requests == len(store.requests)


async def test_check_account_answers_the_shop_url(
    platform: RakutenPlatform, store: RakutenStore, base_url: str
) -> None:
    info = await platform.check_account(store.credentials(), base_url)
    assert info == AccountInfo(external_account_id="fake-shop-402321", name="fake-shop-402321")
    [request] = store.requests
    assert request.path == "/es/2.0/order/searchOrder/"


async def test_check_account_refuses_a_wrong_or_expired_key(
    platform: RakutenPlatform, store: RakutenStore, base_url: str, clock: FakeClock
) -> None:
    wrong = {**store.credentials(), "license_key": "SL-old"}
    with pytest.raises(PlatformAuthRevoked, match="license key"):
        await platform.check_account(wrong, base_url)
    store.license_expires_at = clock() - timedelta(seconds=1)
    with pytest.raises(PlatformAuthRevoked, match="Issue a new license key in RMS"):
        await platform.check_account(store.credentials(), base_url)


async def test_missing_credentials_are_an_auth_problem(
    platform: RakutenPlatform, base_url: str
) -> None:
    with pytest.raises(PlatformAuthRevoked, match="license_key"):
        await platform.check_account({"service_secret": "s", "shop_url": "x"}, base_url)


async def test_a_disabled_api_function_is_an_auth_problem_that_says_which(
    platform: RakutenPlatform, store: RakutenStore, base_url: str
) -> None:
    store.disabled_functions.add("rpay.order.searchOrder")
    with pytest.raises(PlatformAuthRevoked, match=r"ES04-01.*rpay\.order\.searchOrder"):
        await platform.check_account(store.credentials(), base_url)


async def test_other_client_errors_are_rejections(
    http: httpx.AsyncClient, store: RakutenStore, base_url: str, clock: FakeClock
) -> None:
    credentials = RakutenCredentials.from_mapping(store.credentials())
    client = RakutenClient(http, credentials, base_url=f"{base_url}/nowhere", clock=clock)
    with pytest.raises(PlatformRejected, match="HTTP 404"):
        await client.search_page(NOW - timedelta(days=1), NOW, 1)
    assert client.take_stats().requests == 1


async def test_windows_longer_than_63_days_are_never_sent(
    http: httpx.AsyncClient, store: RakutenStore, base_url: str, clock: FakeClock
) -> None:
    credentials = RakutenCredentials.from_mapping(store.credentials())
    client = RakutenClient(http, credentials, base_url=base_url, clock=clock, sleep=clock.sleep)
    with pytest.raises(ValueError, match="63 days"):
        await client.search_page(NOW - timedelta(days=64), NOW, 1)
    assert store.requests == []
    # Starts older than 730 days are moved forward, not refused.
    page = await client.search_page(NOW - timedelta(days=760), NOW - timedelta(days=700), 1)
    assert page.total == 0
    assert [r.status for r in store.requests] == [200]
