"""Small import directories for the tests, and counts of what landed in the database."""

from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import SQLModel

from domain.connection.models import Connection
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ingest.statements import fetch_all, table_of
from domain.order.models import Order, OrderLine, Product
from domain.shop.models import Shop
from domain.subscription.models import Subscription, SubscriptionEvent

CUSTOMERS = """\
mall,customer_id,name,email,phone,birth_date,created_at,updated_at
shopify,c1,山田 花子,Hanako@Example.jp,090-1234-5678,1985-04-01,2024-01-05,2024-03-01T10:00:00+09:00
rakuten,r1,佐藤 美咲,815db2@pc.fw.rakuten.ne.jp,03-1234-5678,,,
"""

ORDERS = """\
mall,order_id,customer_id,ordered_at,total_amount,currency,status,refunded_amount,subscription_id,updated_at
shopify,1001,c1,2024-03-01T10:00:00+09:00,6560,JPY,fulfilled,0,,2024-03-02T10:00:00+09:00
shopify,1002,c1,2024-04-01,3280,,,,sub-1,
rakuten,R-1,r1,2024-03-05T12:00:00+09:00,1980,JPY,cancelled,,,
shopify,1003,c2,2024-03-10T00:00:00Z,2999,USD,,,,
"""

ORDER_LINES = """\
mall,order_id,line,product_id,sku,title,quantity,unit_price,amount
shopify,1001,1,p-toner,TONER-150,化粧水 150ml,2,3280,6560
shopify,1002,1,p-toner,TONER-150,化粧水 150ml,1,3280,
rakuten,R-1,1,,,青汁 30包,1,1980,1980
"""

SUBSCRIPTIONS = """\
mall,subscription_id,customer_id,started_at,status,interval_days,product,cancelled_at,next_delivery_at,updated_at
shopify,sub-1,c1,2024-04-01,active,30,化粧水 定期便,,2024-05-01,
"""

SUBSCRIPTION_EVENTS = """\
mall,subscription_id,kind,occurred_at,event_id,reason
shopify,sub-1,started,2024-04-01T09:00:00+09:00,,
shopify,sub-1,skipped,2024-05-01T09:00:00+09:00,ev-2,在庫が余っている
"""

ALL_FILES = {
    "customers.csv": CUSTOMERS,
    "orders.csv": ORDERS,
    "order_lines.csv": ORDER_LINES,
    "subscriptions.csv": SUBSCRIPTIONS,
    "subscription_events.csv": SUBSCRIPTION_EVENTS,
}


def write_files(directory: Path, files: dict[str, str | bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


async def row_counts(session: AsyncSession, shop: Shop) -> dict[str, int]:
    """Rows per table of the shop, for "nothing was written" and "same counts" checks."""
    models: list[type[SQLModel]] = [
        Connection,
        Customer,
        CustomerIdentity,
        Order,
        OrderLine,
        Product,
        Subscription,
        SubscriptionEvent,
    ]
    counts: dict[str, int] = {}
    for model in models:
        table = table_of(model)
        statement = select(func.count()).select_from(table).where(table.c.shop_id == shop.id)
        counts[model.__name__] = (await fetch_all(session, statement))[0][0]
    return counts
