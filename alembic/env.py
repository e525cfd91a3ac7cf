"""Alembic environment: a composition root. Runs migrations on SQLite and PostgreSQL."""

import asyncio
import logging.config
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from domain.db import create_engine
from domain.settings import Settings
from domain.tables import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    return str(url) if url else Settings().database_url


def _check_foreign_keys(*, ctx: MigrationContext, **_: Any) -> None:
    """Refuse a migration step that leaves rows with dangling foreign keys (SQLite only)."""
    assert ctx.connection is not None
    broken = ctx.connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"rows with dangling foreign keys (table, rowid, parent): {broken[:5]}")


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        # Runs inside each step's transaction, before it commits.
        on_version_apply=[_check_foreign_keys] if sqlite else [],
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # SQLite alters a table by rebuilding it (batch mode) and dropping the old one,
            # which fails while rows of other tables refer to it. Foreign keys are off while
            # migrating, set before any transaction (inside one the pragma does nothing), and
            # each step is checked before it commits (`_check_foreign_keys`).
            raw = await connection.get_raw_connection()
            assert raw.driver_connection is not None
            await raw.driver_connection.execute("PRAGMA foreign_keys=OFF")
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=_url(), target_metadata=metadata, render_as_batch=True, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())
