"""The fake answers like RMS does (reference/malls.md 2.2, 2.3, 2.8)."""

import json
from datetime import timedelta

import httpx
import pytest

from tests.fakes.rakuten.server import (
    GET_TOO_MANY,
    SEARCH_PERIOD_TOO_LONG,
    SEARCH_START_TOO_OLD,
)
from tests.fakes.rakuten.store import RakutenStore, rms_time
from tests.integrations.rakuten.conftest import NOW


def _search(start: str, end: str, **pagination: int) -> dict[str, object]:
    return {
        "dateType": 1,
        "startDatetime": start,
        "endDatetime": end,
        "PaginationRequestModel": {"requestRecordsAmount": 1000, "requestPage": 1, **pagination},
    }


async def _post(
    http: httpx.AsyncClient, store: RakutenStore, url: str, body: object
) -> httpx.Response:
    return await http.post(
        url,
        content=json.dumps(body),
        headers={
            "Authorization": store.esa_header(),
            "Content-Type": "application/json;charset=utf-8",
        },
    )


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        ("2026-05-01T00:00:00+09:00", "2026-05-02T00:00:00+0900", "_ERROR_011"),
        ("2026-05-01T00:00:00Z", "2026-05-02T00:00:00+0900", "_ERROR_011"),
        ("2026-03-01T00:00:00+0900", "2026-05-04T00:00:00+0900", SEARCH_PERIOD_TOO_LONG),
        ("2024-05-01T00:00:00+0900", "2024-06-01T00:00:00+0900", SEARCH_START_TOO_OLD),
    ],
    ids=["colon-offset", "zulu", "over-63-days", "over-730-days"],
)
async def test_searches_outside_the_rules_are_refused_with_their_codes(
    http: httpx.AsyncClient, store: RakutenStore, base_url: str, start: str, end: str, code: str
) -> None:
    response = await _post(
        http, store, f"{base_url}/es/2.0/order/searchOrder/", _search(start, end)
    )
    assert response.status_code == 400
    body = response.json()
    assert body["orderNumberList"] is None
    assert body["PaginationResponseModel"] is None
    assert body["MessageModelList"][0]["messageType"] == "ERROR"
    assert body["MessageModelList"][0]["messageCode"].endswith(code)


async def test_the_cap_truncates_and_zero_hits_have_null_pagination(
    http: httpx.AsyncClient, store: RakutenStore, base_url: str
) -> None:
    store.result_cap = 25
    store.add_spread(30, NOW - timedelta(days=2), NOW - timedelta(days=1))
    url = f"{base_url}/es/2.0/order/searchOrder/"
    start, end = rms_time(NOW - timedelta(days=3)), rms_time(NOW)
    assert start is not None
    assert end is not None
    first = (await _post(http, store, url, _search(start, end, requestRecordsAmount=20))).json()
    assert first["PaginationResponseModel"]["totalRecordsAmount"] == 30
    second = await _post(
        http, store, url, _search(start, end, requestRecordsAmount=20, requestPage=2)
    )
    assert len(second.json()["orderNumberList"]) == 5  # the 26th onwards cannot be had
    too_big = await _post(http, store, url, _search(start, end, requestRecordsAmount=1001))
    assert too_big.status_code == 400
    empty_start, empty_end = rms_time(NOW - timedelta(days=30)), rms_time(NOW - timedelta(days=20))
    assert empty_start is not None
    assert empty_end is not None
    empty = (await _post(http, store, url, _search(empty_start, empty_end))).json()
    assert empty["orderNumberList"] == []
    assert empty["MessageModelList"][0]["messageCode"].endswith("_INFO_102")
    assert set(empty["PaginationResponseModel"].values()) == {None}


async def test_get_order_requires_a_version_and_at_most_100_numbers(
    http: httpx.AsyncClient, store: RakutenStore, base_url: str
) -> None:
    url = f"{base_url}/es/2.0/order/getOrder/"
    order = store.add_order(NOW - timedelta(days=1))
    missing = await _post(http, store, url, {"orderNumberList": [order.number]})
    assert missing.json()["MessageModelList"][0]["messageCode"].endswith("_ERROR_009")
    old = await _post(http, store, url, {"orderNumberList": [order.number], "version": 2})
    assert old.status_code == 400
    many = await _post(http, store, url, {"orderNumberList": ["x"] * 101, "version": 10})
    assert many.json()["MessageModelList"][0]["messageCode"] == GET_TOO_MANY
    found = await _post(http, store, url, {"orderNumberList": [order.number], "version": 10})
    [model] = found.json()["OrderModelList"]
    assert model["orderDatetime"].endswith("+0900")
    assert model["OrdererModel"]["emailAddress"].endswith("@pc.fw.rakuten.ne.jp")


async def test_a_wrong_or_expired_key_gets_the_gateway_error(
    http: httpx.AsyncClient, store: RakutenStore, base_url: str
) -> None:
    url = f"{base_url}/es/1.0/license-management/license-key/expiry-date"
    ok = await http.get(
        url,
        params={"licenseKey": store.license_key},
        headers={"Authorization": store.esa_header()},
    )
    assert ok.json()["expiryDate"].endswith("+0900")
    store.license_expires_at = NOW
    expired = await http.get(
        url,
        params={"licenseKey": store.license_key},
        headers={"Authorization": store.esa_header()},
    )
    assert expired.status_code == 401
    assert expired.json() == {"Results": {"errorCode": "ES01-01", "message": "Un-Authorised"}}
