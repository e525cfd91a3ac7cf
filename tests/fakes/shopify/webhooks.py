"""Webhooks as the fake shop sends them: REST-shaped bodies, Shopify's headers, a signature.

`WebhookEmitter.build(topic, payload)` gives the exact headers and raw body; `send` posts them
to a URL (duplicates and reordering are the caller's: send twice, send in any order).
"""

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import orjson

from tests.fakes.shopify.store import JSON, FakeContract, FakeCustomer, FakeOrder, ShopifyStore

JST = timezone(timedelta(hours=9))


def _time(moment: datetime | None) -> str | None:
    # REST timestamps carry the shop's offset; a JP shop's are +09:00.
    return moment.astimezone(JST).isoformat() if moment else None


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes


class WebhookEmitter:
    def __init__(self, store: ShopifyStore, secret: str, *, api_version: str = "2025-01") -> None:
        self.store = store
        self.secret = secret
        self.api_version = api_version

    def sign(self, body: bytes) -> str:
        digest = hmac.new(self.secret.encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def build(self, topic: str, payload: JSON, *, event_id: str | None = None) -> Delivery:
        body = orjson.dumps(payload)
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": self.sign(body),
            "X-Shopify-Shop-Domain": self.store.shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": self.store.clock().isoformat(),
        }
        return Delivery(headers, body)

    async def send(self, http: httpx.AsyncClient, url: str, delivery: Delivery) -> httpx.Response:
        return await http.post(url, content=delivery.body, headers=delivery.headers)

    # --- REST-shaped payloads -----------------------------------------------------------------

    def customer(self, customer: FakeCustomer) -> JSON:
        return {
            "id": customer.id,
            "admin_graphql_api_id": customer.gid,
            "email": customer.email,
            "phone": customer.phone,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "created_at": _time(customer.created_at),
            "updated_at": _time(customer.updated_at),
        }

    def order(self, order: FakeOrder) -> JSON:
        currency = order.currency
        customer = self.store.customers.get(order.customer_id) if order.customer_id else None
        money = {"amount": str(order.total), "currency_code": currency}
        financial = order.financial_status.lower()
        refunds: list[Any] = []
        if order.refunded > 0:
            refunds.append(
                {
                    "id": order.id + 1,
                    "transactions": [
                        {"kind": "refund", "status": "success", "amount": str(order.refunded)}
                    ],
                }
            )
        return {
            "id": order.id,
            "admin_graphql_api_id": order.gid,
            "name": order.name,
            "email": order.email,
            "phone": order.phone,
            "created_at": _time(order.created_at),
            "processed_at": _time(order.created_at),
            "updated_at": _time(order.updated_at),
            "cancelled_at": _time(order.cancelled_at),
            "cancel_reason": order.cancel_reason.lower() if order.cancel_reason else None,
            "financial_status": financial,
            "fulfillment_status": "fulfilled" if order.fulfillment_status == "FULFILLED" else None,
            "test": order.test,
            "currency": currency,
            "total_price": str(order.total),
            "total_price_set": {"shop_money": money, "presentment_money": money},
            "customer": self.customer(customer) if customer else None,
            "line_items": [
                {
                    "id": line.id,
                    "admin_graphql_api_id": f"gid://shopify/LineItem/{line.id}",
                    "sku": line.sku,
                    "name": line.name,
                    "title": line.name,
                    "quantity": line.quantity,
                    "current_quantity": line.current_quantity,
                    "price": str(line.price),
                    "product_id": line.product_id,
                }
                for line in order.lines
            ],
            "refunds": refunds,
        }

    def refund(self, order: FakeOrder, amount: Decimal) -> JSON:
        return {
            "id": order.id + 2,
            "order_id": order.id,
            "created_at": _time(self.store.clock()),
            "transactions": [{"kind": "refund", "status": "success", "amount": str(amount)}],
        }

    def contract(self, contract: FakeContract) -> JSON:
        return {
            "id": contract.id,
            "admin_graphql_api_id": contract.gid,
            "customer_id": contract.customer_id,
            "admin_graphql_api_customer_id": f"gid://shopify/Customer/{contract.customer_id}",
            "origin_order_id": None,
            "status": contract.status.lower(),
            "currency_code": contract.currency,
            "updated_at": _time(contract.updated_at),
            "billing_policy": {
                "interval": contract.interval.lower(),
                "interval_count": contract.interval_count,
            },
            "revision_id": str(contract.updated_at.timestamp()),
        }

    def billing_cycle(self, contract: FakeContract, index: int) -> JSON:
        cycle = contract.cycles[index - 1]
        return {
            "subscription_contract_id": contract.id,
            "admin_graphql_api_subscription_contract_id": contract.gid,
            "cycle_index": cycle.index,
            "cycle_start_at": _time(cycle.start_at),
            "cycle_end_at": _time(cycle.start_at),
            "billing_attempt_expected_date": _time(cycle.start_at),
            "skipped": cycle.skipped,
            "edited": False,
            "status": "UNBILLED",
        }

    def data_request(
        self, customer: FakeCustomer, orders: list[FakeOrder], request_id: int
    ) -> JSON:
        return {
            "shop_id": 1,
            "shop_domain": self.store.shop_domain,
            "orders_requested": [order.id for order in orders],
            "customer": {"id": customer.id, "email": customer.email, "phone": customer.phone},
            "data_request": {"id": request_id},
        }

    def customer_redact(self, customer: FakeCustomer, orders: list[FakeOrder]) -> JSON:
        return {
            "shop_id": 1,
            "shop_domain": self.store.shop_domain,
            "customer": {"id": customer.id, "email": customer.email, "phone": customer.phone},
            "orders_to_redact": [order.id for order in orders],
        }

    def shop_redact(self) -> JSON:
        return {"shop_id": 1, "shop_domain": self.store.shop_domain}
