"""Typed identifiers and their generator.

Keys are UUIDv7 (time-ordered, so B-tree inserts stay local); tenant tables key on
`(shop_id, id)` so a distributed PostgreSQL can shard every table by shop.
"""

import os
import threading
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


class _Entropy:
    """Random bytes from the OS, read a few kilobytes at a time: a bulk load makes hundreds of
    thousands of ids, and one `getrandom` call each cost more than the rest of `new_id`."""

    def __init__(self, chunk: int = 10 * 1024) -> None:
        self._chunk = chunk
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()
        # A forked child must not hand out the bytes its parent will also use.
        os.register_at_fork(after_in_child=self._forget)

    def take(self, size: int) -> bytes:
        with self._lock:
            end = self._offset + size
            if end > len(self._buffer):
                self._buffer = os.urandom(max(self._chunk, size))
                self._offset, end = 0, size
            taken = self._buffer[self._offset : end]
            self._offset = end
            return taken

    def _forget(self) -> None:
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()


_ENTROPY = _Entropy()


def new_id() -> uuid.UUID:
    """A fresh UUIDv7: 48 bits of Unix milliseconds, then 74 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(_ENTROPY.take(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)
