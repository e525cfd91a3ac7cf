"""A fake SP-API (Orders v0, Sellers) and LWA token endpoint, as malls.md section 3 describes.

Faithful where clients go wrong: LWA error bodies; 1-hour access tokens and 403 for expired or
unknown ones; per-operation token buckets answering 429 QuotaExceeded (no rate header on 429,
`x-amzn-RateLimit-Limit` on 2xx); getOrders validation (exactly one of CreatedAfter and
LastUpdatedAfter, `…Before` at least two minutes before now, ISO dates where an unencoded `+`
arrives as a space, MaxResultsPerPage 1-100); opaque NextTokens full of `+`, `/` and `=`.
"""

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.amazon.store import JP, AmazonStore, FakeOrder, LoggedRequest

Handler = Callable[[Request], Awaitable[Response]]

VISIBILITY_LAG = timedelta(minutes=2)
_TOKEN_PREFIX = b"\xfb\xff\xfe"


def _errors(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    body = {"errors": [{"code": code, "message": message, "details": details}]}
    return JSONResponse(body, status_code=status)


def _invalid(message: str) -> JSONResponse:
    return _errors(400, "InvalidInput", message)


def encode_token(state: dict[str, object]) -> str:
    """Opaque, and full of the characters that break when a client forgets to URL-encode."""
    raw = json.dumps(state, separators=(",", ":")).encode()
    if (len(_TOKEN_PREFIX) + len(raw)) % 3 == 0:
        raw += b" "
    return base64.b64encode(_TOKEN_PREFIX + raw).decode()


def decode_token(token: str) -> dict[str, object] | None:
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_TOKEN_PREFIX):
        return None
    try:
        state: object = json.loads(raw[len(_TOKEN_PREFIX) :])
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def _parse_time(value: str) -> datetime | None:
    if " " in value or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_app(store: AmazonStore) -> Starlette:
    """The fake's ASGI app over `store`."""

    async def token(request: Request) -> Response:
        # Form-encoded, as LWA expects; parsed here without a multipart library.
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "refresh_token":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "grant_type"}, 400
            )
        if form.get("client_id") != store.client_id or (
            form.get("client_secret") != store.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                401,
            )
        if form.get("refresh_token") not in store.refresh_tokens:
            return JSONResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "The request has an invalid grant parameter : "
                    "refresh_token",
                },
                400,
            )
        return JSONResponse(
            {
                "access_token": store.issue_token(),
                "token_type": "bearer",
                "expires_in": store.token_lifetime,
            }
        )

    async def guarded(request: Request, operation: str, handler: Handler) -> Response:
        store.requests += 1
        number = store.requests
        if store.expire_tokens_at_request == number:
            store.invalidate_access_tokens()
        response = await _answer(request, operation, number, handler)
        store.log.append(
            LoggedRequest(
                number,
                operation,
                tuple(request.query_params.multi_items()),
                store.clock.now(),
                response.status_code,
            )
        )
        return response

    async def _answer(request: Request, operation: str, number: int, handler: Handler) -> Response:
        access = request.headers.get("x-amz-access-token")
        expires = store.access_tokens.get(access or "")
        if expires is None:
            return _errors(
                403,
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided is revoked, malformed or invalid.",
            )
        if store.clock.now() >= expires:
            return _errors(
                403,
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided has expired.",
            )
        if not store.admit(operation):
            return _errors(
                429, "QuotaExceeded", "You exceeded your quota for the requested resource."
            )
        fault = store.faults.get(number)
        if fault is not None:
            if fault.stall_seconds:
                await asyncio.sleep(fault.stall_seconds)
            return _errors(fault.status, "InternalFailure", "We encountered an internal error.")
        response: Response = await handler(request)
        if response.status_code == 200 and store.send_rate_header:
            response.headers["x-amzn-RateLimit-Limit"] = store.advertise(operation)
        return response

    async def get_orders(request: Request) -> Response:
        return await guarded(request, "getOrders", _get_orders)

    async def _get_orders(request: Request) -> Response:
        params = request.query_params
        marketplaces = ",".join(params.getlist("MarketplaceIds")).split(",")
        token = params.get("NextToken")
        if token is not None:
            state = decode_token(token)
            if state is None or "query" not in state:
                return _invalid("Invalid NextToken: We could not decode your NextToken.")
            stored = state["query"]
            if not isinstance(stored, dict):
                return _invalid("Invalid NextToken: We could not decode your NextToken.")
            query: dict[str, str] = {str(k): str(v) for k, v in stored.items()}
            for name, value in params.multi_items():
                if name in ("NextToken", "MaxResultsPerPage"):
                    continue
                if name == "MarketplaceIds" and value in query["MarketplaceIds"].split(","):
                    continue
                if query.get(name) != value:
                    return _invalid(f"{name} cannot be changed while paging with a NextToken.")
            after = state.get("after")
            after_key = [str(part) for part in after] if isinstance(after, list) else None
        else:
            if not params.get("MarketplaceIds"):
                return _invalid("MarketplaceIds is required.")
            if JP not in marketplaces:
                return _errors(403, "Unauthorized", "Access to requested resource is denied.")
            created, updated = params.get("CreatedAfter"), params.get("LastUpdatedAfter")
            if (created is None) == (updated is None):
                return _invalid("Exactly one of CreatedAfter and LastUpdatedAfter is required.")
            if created is not None and (
                "LastUpdatedBefore" in params or "LastUpdatedAfter" in params
            ):
                return _invalid("CreatedAfter cannot be combined with LastUpdated filters.")
            query = {
                name: value
                for name, value in params.items()
                if name
                in (
                    "MarketplaceIds",
                    "CreatedAfter",
                    "CreatedBefore",
                    "LastUpdatedAfter",
                    "LastUpdatedBefore",
                )
            }
            after_key = None
        size_text = params.get("MaxResultsPerPage", "100")
        if not size_text.isdigit() or not 1 <= int(size_text) <= 100:
            return _invalid("MaxResultsPerPage must be between 1 and 100.")
        by_update = "LastUpdatedAfter" in query
        start_name = "LastUpdatedAfter" if by_update else "CreatedAfter"
        end_name = "LastUpdatedBefore" if by_update else "CreatedBefore"
        start = _parse_time(query[start_name])
        latest = store.clock.now() - VISIBILITY_LAG
        end = _parse_time(query[end_name]) if end_name in query else latest
        if start is None or end is None:
            return _invalid("Invalid date/time field.")
        if token is None and end > latest:
            return _invalid(
                f"Date provided in {end_name} must be at least 2 minutes prior to the time "
                "the request is made."
            )
        if start >= end:
            return _invalid(f"{start_name} must be earlier than {end_name}.")
        if token is None:
            query[end_name] = _iso(end)

        def key(order: FakeOrder) -> tuple[str, str]:
            moment = order.updated_at if by_update else order.purchased_at
            return (_iso(moment), order.order_id)

        matching = sorted(
            (
                order
                for order in store.orders.values()
                if start
                <= (order.updated_at if by_update else order.purchased_at).replace(microsecond=0)
                <= end
            ),
            key=key,
        )
        if after_key is not None:
            matching = [order for order in matching if key(order) > tuple(after_key)]
        size = min(int(size_text), store.page_size)
        page, rest = matching[:size], matching[size:]
        payload: dict[str, object] = {
            "Orders": [order.payload() for order in page],
            end_name: query[end_name],
        }
        if rest:
            payload["NextToken"] = encode_token({"query": query, "after": list(key(page[-1]))})
        return JSONResponse({"payload": payload})

    async def get_order(request: Request) -> Response:
        return await guarded(request, "getOrder", _get_order)

    async def _get_order(request: Request) -> Response:
        order = store.orders.get(request.path_params["order_id"])
        if order is None:
            return _errors(404, "NotFound", "Invalid AmazonOrderId.")
        return JSONResponse({"payload": order.payload()})

    async def get_order_items(request: Request) -> Response:
        return await guarded(request, "getOrderItems", _get_order_items)

    async def _get_order_items(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        order = store.orders.get(order_id)
        status = store.item_errors.get(order_id)
        if status is not None:
            return _errors(status, "InvalidInput", f"Order {order_id} cannot be read.")
        if order is None:
            return _errors(404, "NotFound", "Invalid AmazonOrderId.")
        offset = 0
        token = request.query_params.get("NextToken")
        if token is not None:
            state = decode_token(token)
            if state is None or state.get("order") != order_id:
                return _invalid("Invalid NextToken: We could not decode your NextToken.")
            offset = int(str(state.get("offset", 0)))
        end = offset + store.items_page_size
        payload: dict[str, object] = {
            "AmazonOrderId": order_id,
            "OrderItems": order.items[offset:end],
        }
        if end < len(order.items):
            payload["NextToken"] = encode_token({"order": order_id, "offset": end})
        return JSONResponse({"payload": payload})

    async def participations(request: Request) -> Response:
        return await guarded(request, "getMarketplaceParticipations", _participations)

    async def _participations(request: Request) -> Response:
        return JSONResponse(
            {
                "payload": [
                    {
                        "marketplace": {
                            "id": JP,
                            "name": "Amazon.co.jp",
                            "countryCode": "JP",
                            "defaultCurrencyCode": "JPY",
                            "defaultLanguageCode": "ja_JP",
                            "domainName": "www.amazon.co.jp",
                        },
                        "participation": {
                            "isParticipating": True,
                            "hasSuspendedListings": False,
                        },
                        "storeName": store.store_name,
                    }
                ]
            }
        )

    return Starlette(
        routes=[
            Route("/auth/o2/token", token, methods=["POST"]),
            Route("/orders/v0/orders", get_orders),
            Route("/orders/v0/orders/{order_id}", get_order),
            Route("/orders/v0/orders/{order_id}/orderItems", get_order_items),
            Route("/sellers/v1/marketplaceParticipations", participations),
        ]
    )
