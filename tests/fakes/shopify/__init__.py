"""A fake Shopify shop: Admin GraphQL (orders, contracts, shop) with its cost bucket, the
60-day rule, protected-data redaction, index lag, failures on demand, and signed webhooks."""

from tests.fakes.shopify.app import ALL_SCOPES, FakeShopify, Knobs
from tests.fakes.shopify.clock import VirtualClock
from tests.fakes.shopify.seed import generate
from tests.fakes.shopify.store import ShopifyStore
from tests.fakes.shopify.webhooks import WebhookEmitter

__all__ = [
    "ALL_SCOPES",
    "FakeShopify",
    "Knobs",
    "ShopifyStore",
    "VirtualClock",
    "WebhookEmitter",
    "generate",
]
