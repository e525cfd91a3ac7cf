"""`riskScoreChanged` over graphql-transport-ws: the shop's band changes, filtered as asked."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from api.relay import encode_id
from domain.events import Event, Topic
from domain.settings import Settings
from domain.shop.models import Role
from kizuki.events import InProcessEventBus
from tests.api.conftest import live_server
from tests.api.world import ShopWorld

TRANSPORT_WS = Subprotocol("graphql-transport-ws")
CHANGES = """
subscription($bands: [RiskBand!], $signs: [RiskSign!]) {
  riskScoreChanged(bands: $bands, signs: $signs) {
    customerId previousBand band probability topSign signs asOf
  }
}"""
AS_OF = "2024-06-01T00:00:00+00:00"


def change(
    customer: uuid.UUID | None, previous: str | None, band: str, top: str | None, signs: str
) -> dict[str, str | int | float | bool | None]:
    """A `risk.changed` event's data as `domain.risk.runs.publish_changes` writes it."""
    return {
        "customer_id": None if customer is None else str(customer),
        "band": band,
        "previous_band": previous,
        "probability": 0.93,
        "top_sign": top,
        "signs": signs,
        "changed": 1,
        "as_of": AS_OF,
    }


@pytest.fixture
async def address(
    make_app: Callable[[Settings], Starlette], settings: Settings
) -> AsyncIterator[str]:
    async with live_server(make_app(settings)) as served:
        yield served


async def receive(ws: ClientConnection, wait: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


async def open_socket(ws: ClientConnection, key: str) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
    assert await receive(ws) == {"type": "connection_ack"}


async def subscribe(ws: ClientConnection, operation_id: str, **variables: Any) -> None:
    payload = {"query": CHANGES, "variables": variables}
    await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))


async def until_subscribed(bus: InProcessEventBus, world: ShopWorld, count: int) -> None:
    for _ in range(500):
        if bus.subscriber_count(world.shop.id, Topic.RISK_CHANGED) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscription never reached the bus")


async def test_changes_reach_their_shops_subscribers_as_their_filters_ask(
    address: str, events: InProcessEventBus, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    mine = [customer.id for customer in shop_a.customers]
    async with connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        await open_socket(ws, shop_a.keys[Role.ANALYST])
        await subscribe(ws, "bands", bands=["HIGH", "CRITICAL"])
        await subscribe(ws, "signs", signs=["SUBSCRIPTION"])
        await subscribe(ws, "all")
        await until_subscribed(events, shop_a, 3)

        a, b = shop_a.shop.id, shop_b.shop.id
        topic = Topic.RISK_CHANGED
        await events.publish(Event(b, topic, change(uuid.uuid4(), "low", "critical", None, "")))
        await events.publish(Event(a, topic, change(None, None, "low", None, "")))
        await events.publish(Event(a, topic, change(mine[0], "high", "low", "basket", "")))
        await events.publish(
            Event(a, topic, change(mine[1], None, "critical", "interval", "interval"))
        )
        await events.publish(
            Event(a, topic, change(mine[2], "low", "high", "subscription", "subscription,basket"))
        )

        received: list[dict[str, Any]] = [await receive(ws) for _ in range(6)]
        with pytest.raises(TimeoutError):
            await receive(ws, wait=0.3)

    by_operation: dict[str, list[dict[str, Any]]] = {}
    for message in received:
        assert message["type"] == "next"
        by_operation.setdefault(message["id"], []).append(
            message["payload"]["data"]["riskScoreChanged"]
        )
    customer = [encode_id("Customer", key) for key in mine]
    assert [c["customerId"] for c in by_operation["all"]] == customer
    assert [c["customerId"] for c in by_operation["bands"]] == customer[1:]
    assert [c["customerId"] for c in by_operation["signs"]] == customer[2:]
    assert by_operation["signs"][0] == {
        "customerId": customer[2],
        "previousBand": "LOW",
        "band": "HIGH",
        "probability": 0.93,
        "topSign": "SUBSCRIPTION",
        "signs": ["SUBSCRIPTION", "BASKET"],
        "asOf": AS_OF,
    }
    assert by_operation["all"][1]["previousBand"] is None
    assert by_operation["all"][0]["signs"] == []


async def test_partners_may_not_follow_risk(
    address: str, events: InProcessEventBus, shop_a: ShopWorld
) -> None:
    async with connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        await open_socket(ws, shop_a.keys[Role.PARTNER])
        await subscribe(ws, "denied")
        denied = await receive(ws)

    assert denied["type"] == "error"
    assert [error["extensions"]["code"] for error in denied["payload"]] == ["FORBIDDEN"]
    assert events.subscriber_count(shop_a.shop.id, Topic.RISK_CHANGED) == 0
