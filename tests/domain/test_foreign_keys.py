"""Every tenant row reaches its shop through foreign keys, on the migrated database itself."""

from dataclasses import dataclass

from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.db import TenantChildModel
from domain.ingest.statements import table_of

# Documented in its model: a derived, append-only log written without foreign-key checks.
WITHOUT_FOREIGN_KEYS = {"risk_score_history"}


@dataclass(frozen=True)
class Key:
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    not_null: bool


def _tenant_keys(connection: Connection) -> dict[str, list[Key]]:
    inspector = inspect(connection)
    keys: dict[str, list[Key]] = {}
    for table in inspector.get_table_names():
        columns = {column["name"]: column for column in inspector.get_columns(table)}
        if "shop_id" not in columns:
            continue
        keys[table] = [
            Key(
                tuple(key["constrained_columns"]),
                key["referred_table"],
                tuple(key["referred_columns"]),
                not any(columns[name]["nullable"] for name in key["constrained_columns"]),
            )
            for key in inspector.get_foreign_keys(table)
        ]
    return keys


def _reaching_the_shop(keys: dict[str, list[Key]]) -> set[str]:
    """Tables whose every row has a shop: a key to `shop` itself, or a NOT NULL key that
    carries `shop_id` to the parent's `shop_id`, the parent reaching the shop in turn."""

    def carries_the_shop(key: Key, reached: set[str]) -> bool:
        if key.columns == ("shop_id",) and (key.parent, key.parent_columns) == ("shop", ("id",)):
            return True
        pairs = dict(zip(key.columns, key.parent_columns, strict=True))
        return key.not_null and pairs.get("shop_id") == "shop_id" and key.parent in reached

    reached: set[str] = set()
    while True:
        more = {
            table
            for table, table_keys in keys.items()
            if table not in reached and any(carries_the_shop(k, reached) for k in table_keys)
        }
        if not more:
            return reached
        reached |= more


async def test_every_tenant_row_reaches_its_shop_through_foreign_keys(
    connection: AsyncConnection,
) -> None:
    keys = await connection.run_sync(_tenant_keys)

    assert _reaching_the_shop(keys) == set(keys) - WITHOUT_FOREIGN_KEYS
    assert all(keys[table] == [] for table in WITHOUT_FOREIGN_KEYS)


async def test_tables_below_a_parent_have_no_key_of_their_own_to_the_shop(
    connection: AsyncConnection,
) -> None:
    keys = await connection.run_sync(_tenant_keys)
    children = {table_of(model).name for model in TenantChildModel.__subclasses__()}

    assert children == {
        "product",
        "order",
        "order_line",
        "customer_identity",
        "subscription",
        "subscription_event",
    }
    assert {
        table for table in children if any(key.parent == "shop" for key in keys[table])
    } == set()
