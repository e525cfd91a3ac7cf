"""The hand-written endpoint Kizuki's read is measured against: Starlette + SQLAlchemy Core.

It takes the same POST body as `/graphql` but knows the query's shape instead of parsing it,
checks the same Bearer key with one indexed lookup, reads with four statements (key, customer
page, identities, last orders joined to their lines through a window function) on one pooled
connection in autocommit (no BEGIN/COMMIT round trips for a read), and answers JSON equal to
Kizuki's: global IDs, ISO datetimes, enum names, Money objects, Relay cursors.

Run it as `uvicorn --factory bench.baseline_app:create_app`; it reads `KIZUKI_*` settings.
"""

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, and_, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from domain.db import utcnow
from domain.settings import Settings
from domain.shop.service import KEY_PREFIX, hash_key
from domain.tables import metadata

MAX_PAGE_SIZE = 100
RECENT_ORDERS = 5

KEY = metadata.tables["api_key"].c
CUSTOMER = metadata.tables["customer"].c
IDENTITY = metadata.tables["customer_identity"].c
ORDER_TABLE = metadata.tables["order"]
ORDER = ORDER_TABLE.c
LINE_TABLE = metadata.tables["order_line"]
LINE = LINE_TABLE.c
CONNECTION_TABLE = metadata.tables["connection"]
CONNECTION = CONNECTION_TABLE.c

_SHOP = bindparam("shop_id", type_=UUID(as_uuid=True))
_IDS = bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))

# Statements are built once: SQLAlchemy's compiled cache and asyncpg's prepared statements
# then serve every request.
KEY_LOOKUP = select(KEY.role, KEY.revoked_at).where(
    KEY.shop_id == _SHOP, KEY.key_hash == bindparam("key_hash")
)

CUSTOMER_PAGE = (
    select(
        CUSTOMER.id,
        CUSTOMER.display_name,
        CUSTOMER.email,
        CUSTOMER.phone,
        CUSTOMER.birth_date,
        CUSTOMER.marketing_restricted,
        CUSTOMER.first_order_at,
        CUSTOMER.last_order_at,
        CUSTOMER.order_count,
        CUSTOMER.total_spent,
        CUSTOMER.currency,
        CUSTOMER.created_at,
    )
    .where(CUSTOMER.shop_id == _SHOP)
    .order_by(CUSTOMER.created_at, CUSTOMER.id)
    .limit(bindparam("limit"))
)

IDENTITIES = (
    select(
        IDENTITY.customer_id,
        IDENTITY.id,
        IDENTITY.platform,
        IDENTITY.external_id,
        IDENTITY.email,
        IDENTITY.email_masked,
    )
    .where(IDENTITY.shop_id == _SHOP, IDENTITY.customer_id == any_(_IDS))
    .order_by(IDENTITY.created_at, IDENTITY.id)
)

# Newest first per customer; one row past the page tells whether older orders exist.
_RECENT = (
    select(
        ORDER.id,
        ORDER.customer_id,
        ORDER.external_id,
        ORDER.ordered_at,
        ORDER.status,
        ORDER.currency,
        ORDER.total_amount,
        ORDER.item_quantity,
        CONNECTION.platform,
        func.row_number()
        .over(partition_by=ORDER.customer_id, order_by=(ORDER.ordered_at.desc(), ORDER.id.desc()))
        .label("rank"),
    )
    .select_from(
        ORDER_TABLE.join(
            CONNECTION_TABLE,
            and_(CONNECTION.shop_id == ORDER.shop_id, CONNECTION.id == ORDER.connection_id),
        )
    )
    .where(ORDER.shop_id == _SHOP, ORDER.customer_id == any_(_IDS))
    .cte("recent")
)
RECENT_ORDERS_WITH_LINES = (
    select(
        _RECENT,
        LINE.position,
        LINE.sku,
        LINE.title,
        LINE.quantity,
        LINE.unit_price,
        LINE.amount,
    )
    .select_from(
        _RECENT.outerjoin(
            LINE_TABLE,
            and_(
                LINE.shop_id == _SHOP,
                LINE.order_id == _RECENT.c.id,
                _RECENT.c.rank <= RECENT_ORDERS,
            ),
        )
    )
    .where(_RECENT.c.rank <= RECENT_ORDERS + 1)
    # Oldest of the five first, as `orders(last: 5)` lists them.
    .order_by(_RECENT.c.customer_id, _RECENT.c.rank.desc(), LINE.position)
)

JSONObject = dict[str, object]
# Opens a connection for one request: the engine's pool in service, the test's in tests.
Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
# Rows are unpacked as tuples: cheaper than reading `Row` attributes by name.
Values = Row[*tuple[Any, ...]]

# Currency symbol and minor-unit digits, for Money's `formatted`.
CURRENCIES = {
    "JPY": ("¥", 0),
    "USD": ("$", 2),
    "EUR": ("€", 2),
    "GBP": ("£", 2),
    "CNY": ("CN¥", 2),
    "KRW": ("₩", 0),
    "TWD": ("NT$", 2),
}


def _opaque(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _global_id(type_name: str, key: uuid.UUID) -> str:
    return _opaque(f"{type_name}:{key}")


def _money(amount: int, currency: str) -> JSONObject:
    symbol, digits = CURRENCIES.get(currency, (f"{currency} ", 2))
    units, minor = divmod(abs(amount), 10**digits)
    number = f"{units:,}" if digits == 0 else f"{units:,}.{minor:0{digits}d}"
    sign = "-" if amount < 0 else ""
    return {"amount": amount, "currency": currency, "formatted": f"{sign}{symbol}{number}"}


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _customer_cursor(created_at: datetime, key: uuid.UUID) -> str:
    position = json.dumps(["CREATED_AT", created_at.isoformat(), key.hex], separators=(",", ":"))
    return _opaque(position)


def _identities(rows: Sequence[Values]) -> dict[uuid.UUID, list[JSONObject]]:
    found: dict[uuid.UUID, list[JSONObject]] = {}
    for customer_id, key, platform, external_id, email, masked in rows:
        found.setdefault(customer_id, []).append(
            {
                "id": _global_id("CustomerIdentity", key),
                "platform": platform,
                "externalId": external_id,
                "email": email,
                "emailMasked": masked,
            }
        )
    return found


def _orders(rows: Sequence[Values]) -> dict[uuid.UUID, JSONObject]:
    """Each customer's `orders(last: 5)` connection, from order rows joined to their lines."""
    edges_of: dict[uuid.UUID, list[JSONObject]] = {}
    with_older: set[uuid.UUID] = set()
    lines: list[JSONObject] = []
    last_order: uuid.UUID | None = None
    for (
        key,
        customer_id,
        external_id,
        ordered_at,
        status,
        currency,
        total,
        item_quantity,
        platform,
        rank,
        position,
        sku,
        title,
        quantity,
        unit_price,
        amount,
    ) in rows:
        edges = edges_of.setdefault(customer_id, [])
        if rank > RECENT_ORDERS:
            with_older.add(customer_id)
            continue
        if key != last_order:
            last_order = key
            lines = []
            order: JSONObject = {
                "id": _global_id("Order", key),
                "externalId": external_id,
                "platform": platform,
                "orderedAt": ordered_at.isoformat(),
                "status": status.upper(),
                "itemQuantity": item_quantity,
                "total": _money(total, currency),
                "lines": lines,
            }
            edges.append({"node": order})
        if position is not None:
            lines.append(
                {
                    "position": position,
                    "sku": sku,
                    "title": title,
                    "quantity": quantity,
                    "unitPrice": None if unit_price is None else _money(unit_price, currency),
                    "amount": _money(amount, currency),
                }
            )
    return {
        customer_id: {"edges": edges, "pageInfo": {"hasPreviousPage": customer_id in with_older}}
        for customer_id, edges in edges_of.items()
    }


_NO_ORDERS: JSONObject = {"edges": [], "pageInfo": {"hasPreviousPage": False}}


async def _page(connection: AsyncConnection, shop_id: uuid.UUID, first: int) -> JSONObject:
    result = await connection.execute(CUSTOMER_PAGE, {"shop_id": shop_id, "limit": first + 1})
    rows = result.all()
    customers = rows[:first]
    params = {"shop_id": shop_id, "ids": [row[0] for row in customers]}
    identities = _identities((await connection.execute(IDENTITIES, params)).all())
    orders = _orders((await connection.execute(RECENT_ORDERS_WITH_LINES, params)).all())
    edges: list[JSONObject] = []
    for (
        key,
        display_name,
        email,
        phone,
        birth_date,
        marketing_restricted,
        first_order_at,
        last_order_at,
        order_count,
        total_spent,
        currency,
        created_at,
    ) in customers:
        node: JSONObject = {
            "id": _global_id("Customer", key),
            "displayName": display_name,
            "email": email,
            "phone": phone,
            "birthDate": _iso(birth_date),
            "marketingRestricted": marketing_restricted,
            "firstOrderAt": _iso(first_order_at),
            "lastOrderAt": _iso(last_order_at),
            "orderCount": order_count,
            "totalSpent": _money(total_spent, currency),
            "createdAt": created_at.isoformat(),
            "identities": identities.get(key, []),
            "orders": orders.get(key, _NO_ORDERS),
        }
        edges.append({"cursor": _customer_cursor(created_at, key), "node": node})
    end_cursor = edges[-1]["cursor"] if edges else None
    page_info = {"hasNextPage": len(rows) > first, "endCursor": end_cursor}
    return {"data": {"customers": {"edges": edges, "pageInfo": page_info}}}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"data": None, "errors": [{"message": message}]}, status_code=status)


def _shop_of(authorization: str) -> tuple[uuid.UUID, str] | None:
    scheme, _, raw_key = authorization.partition(" ")
    parts = raw_key.split("_", 2)
    if scheme.lower() != "bearer" or len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    try:
        return uuid.UUID(hex=parts[1]), raw_key
    except ValueError:
        return None


def _page_size(body: bytes) -> int | None:
    try:
        first = json.loads(body)["variables"]["first"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(first, int) and not isinstance(first, bool) and 1 <= first <= MAX_PAGE_SIZE:
        return first
    return None


def create_app(connect: Connect | None = None) -> Starlette:
    """The baseline's ASGI app with its own engine for its lifespan, or `connect`'s (tests)."""
    connections: list[Connect] = [] if connect is None else [connect]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if connect is not None:
            yield
            return
        settings = Settings()
        engine = create_async_engine(
            settings.database_url,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_size,
            pool_pre_ping=True,
            isolation_level="AUTOCOMMIT",
        )
        connections.append(engine.connect)
        try:
            yield
        finally:
            await engine.dispose()

    async def read(request: Request) -> Response:
        caller = _shop_of(request.headers.get("authorization", ""))
        if caller is None:
            return _error(401, "a Bearer API key is required")
        first = _page_size(await request.body())
        if first is None:
            return _error(400, f"variables.first must be 1 to {MAX_PAGE_SIZE}")
        shop_id, raw_key = caller
        async with connections[0]() as connection:
            params = {"shop_id": shop_id, "key_hash": hash_key(raw_key)}
            key = (await connection.execute(KEY_LOOKUP, params)).first()
            if key is None or (key.revoked_at is not None and key.revoked_at <= utcnow()):
                return _error(401, "unknown or revoked API key")
            if key.role == "partner":
                return _error(403, "customers is not available to partner API keys")
            return JSONResponse(await _page(connection, shop_id, first))

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [Route("/graphql", read, methods=["POST"]), Route("/healthz", healthz)]
    return Starlette(routes=routes, lifespan=lifespan)
