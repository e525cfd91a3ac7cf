from datetime import timedelta

from domain.order.models import OrderStatus
from tests.fakes.amazon import order_item
from tests.integrations.amazon.harness import Amazon


async def test_fetch_orders_reads_named_orders_however_old(amazon: Amazon) -> None:
    long_ago = amazon.clock.now() - timedelta(days=600)
    old = amazon.store.add_order(
        items=[order_item("B00TEA0001", quantity=2, price="3960.00")],
        total="3960.00",
        purchased_at=long_ago,
        updated_at=long_ago,
    )
    amazon.store.change_order(old.order_id, status="Canceled")

    page = await amazon.platform.fetch_orders(
        amazon.account(), [old.order_id, "503-0000000-0000000"]
    )

    [order] = page.records.orders
    assert (order.external_id, order.status) == (old.order_id, OrderStatus.CANCELLED)
    assert [line.quantity for line in order.lines] == [2]
    [missing] = page.rejected
    assert missing.external_id == "503-0000000-0000000"
    assert "getOrder" in missing.problem
    assert page.cursor == {}
    assert [entry.operation for entry in amazon.store.log if entry.operation != "token"] == [
        "getOrder",
        "getOrder",
        "getOrderItems",
    ]
