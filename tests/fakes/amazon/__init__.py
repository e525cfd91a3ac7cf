"""A fake Amazon SP-API and LWA server over an in-memory store the test controls."""

from tests.fakes.amazon.app import create_app
from tests.fakes.amazon.store import JP, AmazonStore, FakeClock, Fault, order_item

__all__ = ["JP", "AmazonStore", "FakeClock", "Fault", "create_app", "order_item"]
