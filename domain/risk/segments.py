"""Each customer's segment: the first product they bought and the mall they bought it on.

A first-time buyer is measured against the shop's time to a second purchase among customers
who started the same way (`returns`). A customer's first product is the product of the first
line that names one (lowest position) on their first purchase: the earliest order that is
neither cancelled nor refunded, ties broken by order id, if it came before the cut-off. Ingest
keeps it on the customer (`domain.ingest.aggregates`). The mall is the platform of the
product's connection, which is the order's (products are per connection).

Codes rank the (mall, product external ID) keys in code-point order, among the keys that at
least `MIN_SEGMENT_CUSTOMERS` customers started with; every other customer gets -1 and the
shop-wide curve. So the same data give the same codes on either backend. A full run stores,
with its fit, the codes that got a curve of their own: rescoring a customer later maps the
customer's key through that table, so a key keeps the code its curve was fitted under.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, select

from domain.connection.models import Connection
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import chunked, fetch_all, one_of, table_of
from domain.order.models import Order, OrderLine, Product
from domain.risk.returns import MIN_SEGMENT_RETURNS

IntArray = NDArray[np.int64]
UuidArray = NDArray[np.void]

# (mall, product external ID)
SegmentKey = tuple[str, str]

# A segment needs this many customers to be coded. A curve of its own needs as many returns
# (`MIN_SEGMENT_RETURNS`), which fewer customers can never give: a code for them would only
# lengthen the table and never change a score.
MIN_SEGMENT_CUSTOMERS = MIN_SEGMENT_RETURNS

_ORDER = table_of(Order)
_LINE = table_of(OrderLine)
_PRODUCT = table_of(Product)
_CONNECTION = table_of(Connection)


@dataclass(frozen=True, slots=True)
class FirstProducts:
    """Per customer, the index of their first product's key in `keys` (-1: none known).

    `keys` are sorted and distinct.
    """

    key: IntArray
    keys: tuple[SegmentKey, ...]


@dataclass(frozen=True, slots=True)
class Segments:
    """Per customer segment codes (-1 unknown or too rare), and each coded key's code."""

    codes: IntArray
    table: Mapping[SegmentKey, int]


async def first_products(
    session: AsyncSession, shop_id: ShopId, customer: IntArray, product: UuidArray, size: int
) -> FirstProducts:
    """`FirstProducts` of `size` customers from rows (customer index, product id).

    Reads the keys of the distinct products only, by id.
    """
    distinct, which = np.unique(product.view("S16"), return_inverse=True)
    ids = [uuid.UUID(bytes=value.tobytes()) for value in distinct.view("V16")]
    product_row, connection = _PRODUCT, _CONNECTION
    found: dict[uuid.UUID, SegmentKey] = {}
    for chunk in chunked(ids):
        query = (
            select(product_row.c.id, connection.c.platform, product_row.c.external_id)
            .select_from(product_row)
            .join(
                connection,
                and_(
                    connection.c.shop_id == product_row.c.shop_id,
                    connection.c.id == product_row.c.connection_id,
                ),
            )
            .where(product_row.c.shop_id == shop_id, one_of(session, product_row.c.id, chunk))
        )
        found.update(
            {row[0]: (str(row[1]), str(row[2])) for row in await fetch_all(session, query)}
        )
    keys = sorted(set(found.values()))
    position = {key: index for index, key in enumerate(keys)}
    # A first product is kept without a foreign key: one deleted since counts as none.
    product_key = np.array(
        [position[found[value]] if value in found else -1 for value in ids], dtype=np.int64
    )
    key = np.full(size, -1, dtype=np.int64)
    key[customer] = product_key[which.reshape(-1)] if ids else -1
    return FirstProducts(key, tuple(keys))


def assign_segments(first: FirstProducts) -> Segments:
    """Codes for keys with at least `MIN_SEGMENT_CUSTOMERS` customers, in key order."""
    counts = np.bincount(first.key[first.key >= 0], minlength=len(first.keys))
    kept = counts >= MIN_SEGMENT_CUSTOMERS
    code_of_key = np.where(kept, np.cumsum(kept) - 1, -1).astype(np.int64)
    table = {key: int(code) for key, code in zip(first.keys, code_of_key, strict=True) if code >= 0}
    return Segments(_per_customer(first, code_of_key), table)


def segment_codes(first: FirstProducts, table: Mapping[SegmentKey, int]) -> IntArray:
    """Each customer's code under a stored `table` (-1 for keys it does not hold)."""
    code_of_key = np.array([table.get(key, -1) for key in first.keys], dtype=np.int64)
    return _per_customer(first, code_of_key)


def with_curves(table: Mapping[SegmentKey, int], curves: IntArray) -> dict[SegmentKey, int]:
    """The entries of `table` whose code has a curve of its own (`ReturnCurve.segments`)."""
    own = set(curves[curves >= 0].tolist())
    return {key: code for key, code in table.items() if code in own}


def _per_customer(first: FirstProducts, code_of_key: IntArray) -> IntArray:
    if code_of_key.shape[0] == 0:
        return np.full(first.key.shape[0], -1, dtype=np.int64)
    code = code_of_key[np.maximum(first.key, 0)]
    return np.asarray(np.where(first.key >= 0, code, -1), dtype=np.int64)
