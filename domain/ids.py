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


# UUIDv7 layout: 48 bits of Unix milliseconds, version 7 (4 bits), 12 random bits, variant
# 0b10 (2 bits), 62 random bits. Eighty random bits are drawn; the six where version and
# variant go are overwritten: one mask and one OR instead of a shift per field.
_RANDOM_PART = ((1 << 80) - 1) & ~(0xF << 76) & ~(0b11 << 62)
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)
_MILLIS = (1 << 48) - 1


def new_id() -> uuid.UUID:
    """A fresh UUIDv7: 48 bits of Unix milliseconds, then 74 random bits."""
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big") & _RANDOM_PART
    return uuid.UUID(int=((millis & _MILLIS) << 80) | random | _VERSION_AND_VARIANT)
