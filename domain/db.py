"""Engines, sessions and the column types that behave the same on SQLite and PostgreSQL.

Only composition roots call `create_engine`; everything else receives a session.
"""

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, event, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["AsyncSession"]

JSONValue = JSON().with_variant(JSONB(), "postgresql")
# Pooled PostgreSQL connections are replaced at checkout once this old.
POOL_RECYCLE_SECONDS = 1800


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite, which drops the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: Kizuki stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def time_field(*, nullable: bool = False, index: bool = False) -> Any:
    """A `UTCDateTime` column; `Any` because SQLModel's `Field` is untyped here."""
    return Field(
        default=None if nullable else ..., sa_type=UTCDateTime, nullable=nullable, index=index
    )


class TenantModel(SQLModel):
    """Base of every tenant table: rows belong to exactly one shop."""

    shop_id: uuid.UUID = Field(foreign_key="shop.id", primary_key=True)


class TenantChildModel(TenantModel):
    """A tenant table whose rows reach their shop through a parent: every such table has a
    composite foreign key `(shop_id, <parent>_id)` of NOT NULL columns to a tenant table.

    It has no foreign key of its own to `shop`: that would prove nothing more, and its check
    per inserted row cost a sixth to a fifth of the server's CPU time for COPYing orders and
    their lines.
    """

    shop_id: uuid.UUID = Field(primary_key=True)


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout, PostgreSQL a pool."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # The driver's own transaction handling breaks SAVEPOINTs; SQLAlchemy emits BEGIN.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            # IMMEDIATE takes the write lock up front. A deferred transaction that read first
            # fails at once ("database is locked", no busy wait) when it tries to write after
            # another one committed: the embedded shape runs jobs beside API requests.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: with asyncpg it costs three round trips per checkout (BEGIN, a ping,
        # ROLLBACK). A connection the server closed (a restart, an idle timeout) is replaced at
        # checkout without any (below). One lost silently fails its first statement; that
        # disconnect error invalidates the pool, so the next checkouts reconnect. Recycling
        # keeps connections younger than the idle timeouts of proxies in between.
        pool_recycle=POOL_RECYCLE_SECONDS,
    )

    @event.listens_for(engine.sync_engine, "checkout")
    def _refuse_closed(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        # The driver notices a server that closed the connection (a restart, an idle timeout)
        # as soon as the loop runs; the pool then replaces it instead of handing it out.
        is_closed = getattr(record.driver_connection, "is_closed", None)
        if is_closed is not None and is_closed():
            raise DisconnectionError("the server closed this pooled connection")

    return engine


def session_factory(bind: AsyncEngine | AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions with `expire_on_commit=False`, one per unit of work.

    Bound to a connection (tests), sessions join its transaction through SAVEPOINTs.
    """
    if isinstance(bind, AsyncConnection):
        return async_sessionmaker(
            bind=bind,
            class_=AsyncSession,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
    return async_sessionmaker(bind=bind, class_=AsyncSession, expire_on_commit=False)


def bind_tenant(session: AsyncSession, shop_id: uuid.UUID) -> None:
    """Scope every ORM query of this session to one shop, as a backstop to explicit filters."""
    session.sync_session.info["shop_id"] = shop_id


@event.listens_for(Session, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    shop_id = state.session.info.get("shop_id")
    if shop_id is None or not state.is_select or state.is_column_load or state.is_relationship_load:
        return
    # Criteria per mapped tenant class: SQLAlchemy would evaluate a lambda on the unmapped
    # `TenantModel` itself, whose pydantic fields are no class attributes (AttributeError).
    for mapper in state.all_mappers:
        if issubclass(mapper.class_, TenantModel):
            state.statement = state.statement.options(
                with_loader_criteria(
                    mapper.class_,
                    lambda cls: cls.shop_id == shop_id,
                    include_aliases=True,
                    track_closure_variables=False,
                )
            )


def upsert(
    session: AsyncSession,
    table: type[SQLModel],
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str] = (),
) -> Insert:
    """An INSERT … ON CONFLICT for the session's dialect: update `update` columns, else skip."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    target = table.__table__  # type: ignore[attr-defined]
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(target).values(list(rows))
    elif dialect == "sqlite":
        stmt = sqlite_insert(target).values(list(rows))
    else:
        return insert(target).values(list(rows))
    if update:
        return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
        )
    return stmt.on_conflict_do_nothing(index_elements=list(keys))  # type: ignore[no-any-return]
