"""A fake RMS API (RakutenPay Order API and license expiry) over a `RakutenStore`.

Faithful to reference/malls.md section 2: ESA auth with `ES01-01`/`ES04-01` gateway errors;
searchOrder validation (dateType, `+0900`-only datetimes, 63-day windows, 730-day lookback,
≤ 1,000 per page), the result cap with truncation, ascending/descending order-date sort,
the zero-hit shape (null pagination); getOrder with ≤ 100 numbers and a required version
(3-10). Error codes the reference does not document are marked "assumed".
"""

import asyncio
import base64
import json
import math
import re
from datetime import datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.rakuten.store import JSONObject, LoggedRequest, RakutenStore, rms_time

_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0900$")
SEARCH = "ORDER_EXT_API_SEARCH_ORDER"
GET = "ORDER_EXT_API_GET_ORDER"
# Codes the reference gives no number for (assumed, stable within the fake):
SEARCH_PERIOD_TOO_LONG = f"{SEARCH}_ERROR_012"
SEARCH_START_TOO_OLD = f"{SEARCH}_ERROR_013"
SEARCH_BAD_PAGINATION = f"{SEARCH}_ERROR_014"
GET_TOO_MANY = f"{GET}_ERROR_002"
GET_BAD_VERSION = f"{GET}_ERROR_010"
GET_NOT_FOUND = f"{GET}_ERROR_101"


def _gateway_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"Results": {"errorCode": code, "message": message}}, status_code=status)


def _message(kind: str, code: str, text: str, number: str | None = None) -> JSONObject:
    message: JSONObject = {"messageType": kind, "messageCode": code, "message": text}
    if number is not None:
        message["orderNumber"] = number
    return message


def _search_error(code: str, text: str) -> JSONResponse:
    return JSONResponse(
        {
            "orderNumberList": None,
            "MessageModelList": [_message("ERROR", code, text)],
            "PaginationResponseModel": None,
        },
        status_code=400,
    )


def _parse_time(raw: object) -> datetime | None:
    if not isinstance(raw, str) or not _DATETIME.match(raw):
        return None
    return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S%z")


async def _gate(store: RakutenStore, request: Request, function: str) -> LoggedRequest | Response:
    """Log, authenticate, throttle and inject failures; a Response means "answer this"."""
    raw = await request.body()
    try:
        decoded = json.loads(raw) if raw else {}
    except ValueError:
        decoded = {}
    body: JSONObject = decoded if isinstance(decoded, dict) else {}
    logged = store.next_request(request.url.path, body)

    def answer(response: Response) -> Response:
        logged.status = response.status_code
        return response

    header = request.headers.get("authorization", "")
    expected = base64.b64encode(f"{store.service_secret}:{store.license_key}".encode()).decode()
    expired = store.license_expires_at is not None and store.clock() >= store.license_expires_at
    if header != f"ESA {expected}" or expired:
        return answer(_gateway_error(401, "ES01-01", "Un-Authorised"))
    if function in store.disabled_functions:
        return answer(_gateway_error(400, "ES04-01", "Bad Request"))
    if store.throttled(logged):
        headers = {} if store.retry_after is None else {"Retry-After": str(store.retry_after)}
        return answer(Response(b"", status_code=store.throttle_status, headers=headers))
    failure = store.failures.get(logged.number)
    if failure == "timeout":
        await asyncio.sleep(store.hang_seconds)
        return answer(Response(b"", status_code=504))
    if failure is not None:
        return answer(Response(b"Service Unavailable", status_code=int(failure)))
    return logged


async def search_order(request: Request) -> Response:
    store: RakutenStore = request.app.state.store
    gated = await _gate(store, request, "rpay.order.searchOrder")
    if isinstance(gated, Response):
        return gated
    response = _search(store, gated.body)
    gated.status = response.status_code
    return response


def _search(store: RakutenStore, body: JSONObject) -> Response:
    date_type = body.get("dateType")
    if date_type is None:
        return _search_error(f"{SEARCH}_ERROR_009", "dateTypeが指定されていません。")
    if date_type != 1:
        return _search_error(f"{SEARCH}_ERROR_009", "the fake searches by order date only")
    if body.get("startDatetime") is None or body.get("endDatetime") is None:
        return _search_error(f"{SEARCH}_ERROR_010", "期間が指定されていません。")
    start = _parse_time(body.get("startDatetime"))
    end = _parse_time(body.get("endDatetime"))
    if start is None or end is None:
        return _search_error(f"{SEARCH}_ERROR_011", "日付の形式が不正です。")
    if end < start or end - start > timedelta(days=63):
        return _search_error(SEARCH_PERIOD_TOO_LONG, "期間は63日以内で指定してください。")
    if start < store.clock() - timedelta(days=730):
        return _search_error(SEARCH_START_TOO_OLD, "開始日時は過去730日以内で指定してください。")
    pagination = body.get("PaginationRequestModel")
    settings = pagination if isinstance(pagination, dict) else {}
    per_page = settings.get("requestRecordsAmount", 30)
    page = settings.get("requestPage", 1)
    if not isinstance(per_page, int) or not 1 <= per_page <= 1000:
        return _search_error(SEARCH_BAD_PAGINATION, "requestRecordsAmountは1000以下です。")
    if not isinstance(page, int) or page < 1:
        return _search_error(SEARCH_BAD_PAGINATION, "requestPageが不正です。")
    descending = False
    sorts = settings.get("SortModelList")
    if isinstance(sorts, list) and sorts and isinstance(sorts[0], dict):
        descending = sorts[0].get("sortDirection") == 2
    hits = sorted(
        (order for order in store.orders.values() if start <= order.ordered_at <= end),
        key=lambda order: (order.ordered_at, order.number),
        reverse=descending,
    )
    if not hits:
        return JSONResponse(
            {
                "orderNumberList": [],
                "MessageModelList": [
                    _message("INFO", f"{SEARCH}_INFO_102", "注文検索結果が0件でした。")
                ],
                "PaginationResponseModel": {
                    "totalRecordsAmount": None,
                    "totalPages": None,
                    "requestPage": None,
                },
            }
        )
    reachable = hits[: store.result_cap]
    reported = len(hits) if store.report_true_total else len(reachable)
    shown = reachable[(page - 1) * per_page : page * per_page]
    return JSONResponse(
        {
            "orderNumberList": [order.number for order in shown],
            "MessageModelList": [
                _message("INFO", f"{SEARCH}_INFO_101", "注文検索に成功しました。")
            ],
            "PaginationResponseModel": {
                "totalRecordsAmount": reported,
                "totalPages": math.ceil(reported / per_page),
                "requestPage": page,
            },
        }
    )


async def get_order(request: Request) -> Response:
    store: RakutenStore = request.app.state.store
    gated = await _gate(store, request, "rpay.order.getOrder")
    if isinstance(gated, Response):
        return gated
    response = _get(store, gated.body)
    gated.status = response.status_code
    return response


def _get_error(code: str, text: str) -> JSONResponse:
    return JSONResponse(
        {"MessageModelList": [_message("ERROR", code, text)], "OrderModelList": None},
        status_code=400,
    )


def _get(store: RakutenStore, body: JSONObject) -> Response:
    numbers = body.get("orderNumberList")
    if not isinstance(numbers, list) or not numbers:
        return _get_error(f"{GET}_ERROR_001", "orderNumberListが指定されていません。")
    if len(numbers) > 100:
        return _get_error(GET_TOO_MANY, "orderNumberListは100件以内です。")
    version = body.get("version")
    if version is None:
        return _get_error(f"{GET}_ERROR_009", "versionが指定されていません。")
    if not isinstance(version, int) or not 3 <= version <= 10:
        return _get_error(GET_BAD_VERSION, "versionが不正です。")
    oldest = store.clock() - timedelta(days=730)
    found: list[JSONObject] = []
    messages: list[JSONObject] = []
    for number in numbers:
        order = store.orders.get(str(number))
        if order is None or order.ordered_at < oldest:
            messages.append(_message("ERROR", GET_NOT_FOUND, "注文が存在しません。", str(number)))
            continue
        found.append(order.render())
    messages.insert(
        0,
        _message(
            "INFO",
            f"{GET}_INFO_101",
            f"受注情報取得に成功しました。(取得件数{len(found)}件)",
        ),
    )
    return JSONResponse({"MessageModelList": messages, "OrderModelList": found, "version": version})


async def license_expiry(request: Request) -> Response:
    store: RakutenStore = request.app.state.store
    gated = await _gate(store, request, "license.expiryDate.get")
    if isinstance(gated, Response):
        return gated
    if request.query_params.get("licenseKey") != store.license_key:
        return _gateway_error(400, "ES04-01", "Bad Request")
    expiry = store.license_expires_at or store.clock() + timedelta(days=90)
    return JSONResponse({"expiryDate": rms_time(expiry)})


def create_app(store: RakutenStore) -> Starlette:
    app = Starlette(
        routes=[
            Route("/es/2.0/order/searchOrder/", search_order, methods=["POST"]),
            Route("/es/2.0/order/getOrder/", get_order, methods=["POST"]),
            Route(
                "/es/1.0/license-management/license-key/expiry-date",
                license_expiry,
                methods=["GET"],
            ),
        ]
    )
    app.state.store = store
    return app
