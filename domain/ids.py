"""Typed identifiers and their generator.

Keys are UUIDv7 (time-ordered, so B-tree inserts stay local); tenant tables key on
`(shop_id, id)` so a distributed PostgreSQL can shard every table by shop.
"""

import os
import time
import uuid
from typing import NewType

ShopId = NewType("ShopId", uuid.UUID)
ApiKeyId = NewType("ApiKeyId", uuid.UUID)
ConnectionId = NewType("ConnectionId", uuid.UUID)
CustomerId = NewType("CustomerId", uuid.UUID)
OrderId = NewType("OrderId", uuid.UUID)
ProductId = NewType("ProductId", uuid.UUID)
SubscriptionId = NewType("SubscriptionId", uuid.UUID)


def new_id() -> uuid.UUID:
    """A fresh UUIDv7: 48 bits of Unix milliseconds, then 74 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)
