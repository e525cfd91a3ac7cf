import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.relay import encode_id
from domain.settings import Settings
from tests.api.conftest import serving
from tests.api.world import ShopWorld

SECRET = "connection to db-7.internal:5432 refused (password=hunter2)"


@pytest.fixture
def broken_connections_table(engine: AsyncEngine) -> Iterator[None]:
    """The database fails any read of the connection table: an outage, not a refused request."""

    def fail(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM connection" in statement:
            raise RuntimeError(SECRET)

    event.listen(engine.sync_engine, "before_cursor_execute", fail)
    yield
    event.remove(engine.sync_engine, "before_cursor_execute", fail)


async def test_production_masks_unexpected_errors_and_logs_them_with_the_request_id(
    make_app: Callable[[Settings], Starlette],
    production_settings: Settings,
    shop_a: ShopWorld,
    broken_connections_table: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="kizuki.api")
    async with serving(make_app(production_settings)) as client:
        response = await client.post(
            "{ shop { name } connections { name } }",
            key=shop_a.admin,
            headers={"X-Request-ID": "trace-123"},
        )

    body = response.json()
    assert response.status_code == 200
    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": "Unexpected error.",
            "locations": [{"line": 1, "column": 17}],
            "path": ["connections"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "trace-123"},
        }
    ]
    assert SECRET not in response.text
    logged = [record for record in caplog.records if getattr(record, "request_id", None)]
    assert [record.request_id for record in logged] == ["trace-123"]  # type: ignore[attr-defined]
    assert SECRET in logged[0].getMessage()


async def test_development_shows_unexpected_errors(
    make_app: Callable[[Settings], Starlette],
    settings: Settings,
    shop_a: ShopWorld,
    broken_connections_table: None,
) -> None:
    async with serving(make_app(settings)) as client:
        body = (await client.post("{ connections { name } }", key=shop_a.admin)).json()

    assert body["errors"][0]["message"] == SECRET
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


@pytest.mark.parametrize("environment", ["development", "production"])
async def test_malformed_ids_are_clear_errors_in_every_environment(
    make_app: Callable[[Settings], Starlette],
    settings: Settings,
    production_settings: Settings,
    shop_a: ShopWorld,
    environment: str,
) -> None:
    chosen = settings if environment == "development" else production_settings
    async with serving(make_app(chosen)) as client:
        malformed = await client.run('{ node(id: "not an id!") { id } }', key=shop_a.admin)
        wrong_type = await client.run(
            "query($id: ID!) { customer(id: $id) { id } }",
            key=shop_a.admin,
            variables={"id": encode_id("Order", uuid.uuid4())},
        )

    assert malformed["data"] == {"node": None}
    assert malformed["errors"] == [
        {
            "message": "'not an id!' is not a valid ID",
            "locations": [{"line": 1, "column": 3}],
            "path": ["node"],
            "extensions": {"code": "INVALID_ID"},
        }
    ]
    assert wrong_type["errors"][0]["message"] == "expected the ID of a Customer, got one of a Order"
    assert wrong_type["errors"][0]["extensions"] == {"code": "INVALID_ID"}


@pytest.mark.parametrize(
    "cursor", ["garbage", "WyJOQU1FIiwxLCJ6eiJd", encode_id("Customer", uuid.uuid4())]
)
async def test_malformed_cursors_are_clear_errors(
    make_app: Callable[[Settings], Starlette],
    production_settings: Settings,
    shop_a: ShopWorld,
    cursor: str,
) -> None:
    async with serving(make_app(production_settings)) as client:
        result = await client.run(
            "query($c: String) { customers(first: 2, after: $c) { totalCount } }",
            key=shop_a.admin,
            variables={"c": cursor},
        )

    assert result["errors"][0]["message"] == f"{cursor!r} is not a valid cursor"
    assert result["errors"][0]["extensions"] == {"code": "INVALID_INPUT"}
