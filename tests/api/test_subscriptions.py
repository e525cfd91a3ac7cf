"""`events` over graphql-transport-ws, served by uvicorn on loopback."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from domain.events import Event, Topic
from domain.settings import Settings
from domain.shop.models import Role
from kizuki.events import InProcessEventBus
from tests.api.conftest import live_server
from tests.api.world import ShopWorld

TRANSPORT_WS = Subprotocol("graphql-transport-ws")
EVENTS = "subscription($t: [EventTopic!]) { events(topics: $t) { topic data occurredAt } }"


@pytest.fixture
async def address(
    make_app: Callable[[Settings], Starlette], settings: Settings
) -> AsyncIterator[str]:
    async with live_server(make_app(settings)) as served:
        yield served


async def receive(ws: ClientConnection, wait: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


async def start(ws: ClientConnection, payload: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return await receive(ws)


async def subscribe(ws: ClientConnection, operation_id: str, topics: list[str] | None) -> None:
    message = {"query": EVENTS, "variables": {"t": topics}}
    await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": message}))


async def until_subscribed(bus: InProcessEventBus, world: ShopWorld, topics: list[Topic]) -> None:
    for _ in range(500):
        if all(bus.subscriber_count(world.shop.id, topic) for topic in topics):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscription never reached the bus")


async def test_a_subscriber_gets_its_shops_events_and_never_another_shops(
    address: str, events: InProcessEventBus, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    async with connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        assert await start(ws, {"Authorization": f"Bearer {shop_a.admin}"}) == {
            "type": "connection_ack"
        }
        await subscribe(ws, "1", ["ORDERS_INGESTED", "RISK_CHANGED"])
        await until_subscribed(events, shop_a, [Topic.ORDERS_INGESTED, Topic.RISK_CHANGED])

        await events.publish(Event(shop_b.shop.id, Topic.ORDERS_INGESTED, {"count": 99}))
        await events.publish(Event(shop_a.shop.id, Topic.SYNC_PROGRESS, {"percent": 10}))
        await events.publish(Event(shop_a.shop.id, Topic.ORDERS_INGESTED, {"count": 3}))
        await events.publish(Event(shop_b.shop.id, Topic.RISK_CHANGED, {"customers": 7}))
        await events.publish(Event(shop_a.shop.id, Topic.RISK_CHANGED, {"customers": 2}))

        first = await receive(ws)
        second = await receive(ws)
        with pytest.raises(TimeoutError):
            await receive(ws, wait=0.3)

    assert first["type"] == second["type"] == "next"
    assert first["id"] == second["id"] == "1"
    payloads = [first["payload"]["data"]["events"], second["payload"]["data"]["events"]]
    assert [(p["topic"], p["data"]) for p in payloads] == [
        ("ORDERS_INGESTED", {"count": 3}),
        ("RISK_CHANGED", {"customers": 2}),
    ]
    assert all(p["occurredAt"].endswith("+00:00") for p in payloads)
    assert events.total_subscribers() == 0


async def test_the_key_may_come_as_api_key_and_topics_default_to_all(
    address: str, events: InProcessEventBus, shop_a: ShopWorld
) -> None:
    async with connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        assert (await start(ws, {"apiKey": shop_a.keys[Role.ANALYST]}))["type"] == "connection_ack"
        await subscribe(ws, "all", None)
        await until_subscribed(events, shop_a, list(Topic))

        await events.publish(Event(shop_a.shop.id, Topic.MESSAGE_STATUS, {"status": "sent"}))

        message = await receive(ws)
        await ws.send(json.dumps({"id": "all", "type": "complete"}))

    assert message["payload"]["data"]["events"]["topic"] == "MESSAGE_STATUS"


async def test_partners_may_follow_sync_progress_only(
    address: str, events: InProcessEventBus, shop_a: ShopWorld
) -> None:
    async with connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        await start(ws, {"Authorization": f"Bearer {shop_a.keys[Role.PARTNER]}"})
        await subscribe(ws, "denied", ["ORDERS_INGESTED"])
        denied = await receive(ws)
        await subscribe(ws, "allowed", ["SYNC_PROGRESS"])
        await until_subscribed(events, shop_a, [Topic.SYNC_PROGRESS])
        await events.publish(Event(shop_a.shop.id, Topic.SYNC_PROGRESS, {"percent": 50}))
        allowed = await receive(ws)

    assert denied["type"] == "error"
    assert denied["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "ORDERS_INGESTED" in denied["payload"][0]["message"]
    assert allowed["payload"]["data"]["events"]["data"] == {"percent": 50}


@pytest.mark.parametrize(
    "payload",
    [{}, {"Authorization": "Bearer kzk_nothex_nope"}, {"apiKey": ""}, {"Authorization": 5}],
)
async def test_connections_without_a_valid_key_are_closed(
    address: str, shop_a: ShopWorld, payload: dict[str, Any]
) -> None:
    async with connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_subscribing_before_connection_init_is_closed(address: str) -> None:
    async with connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        await subscribe(ws, "1", None)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_the_legacy_graphql_ws_protocol_is_refused(address: str) -> None:
    async with connect(f"ws://{address}/graphql", subprotocols=[Subprotocol("graphql-ws")]) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4406


async def test_queries_run_over_the_socket_too(address: str, shop_a: ShopWorld) -> None:
    async with connect(f"ws://{address}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        await start(ws, {"Authorization": f"Bearer {shop_a.admin}"})
        payload = {"query": "{ shop { name } customers(first: 1) { totalCount } }"}
        await ws.send(json.dumps({"id": "q", "type": "subscribe", "payload": payload}))
        result = await receive(ws)
        done = await receive(ws)

    assert result["payload"] == {
        "data": {"shop": {"name": shop_a.shop.name}, "customers": {"totalCount": 3}}
    }
    assert done == {"id": "q", "type": "complete"}
