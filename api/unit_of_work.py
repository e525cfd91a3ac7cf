"""One session per GraphQL operation: a transaction for mutations, none for reads on PostgreSQL.

The operation's `Context` is made when the operation starts. The session opens only for
execution, so a document refused by validation or limits never touches the database, and a
subscription holds no connection while it waits for events. A mutation commits on success and
rolls back on any error or `UserError`; buffered jobs are sent only after the commit and dropped
otherwise.

A query only reads, so on PostgreSQL it runs outside a transaction (autocommit): no BEGIN and
COMMIT round trips. At PostgreSQL's default READ COMMITTED level that changes nothing a read
can see: inside a transaction too, each statement sees the data committed when it starts.
"""

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from api.context import Caller, Context
from domain.db import AsyncSession, bind_tenant

logger = logging.getLogger("kizuki.api")

AUTOCOMMIT = "AUTOCOMMIT"


async def read_without_transaction(session: AsyncSession) -> None:
    """Let `session` run its statements outside a transaction until it commits, where that
    reads the same: a PostgreSQL engine at READ COMMITTED, and no transaction open yet.

    Sessions joined to an outer transaction (the tests') stay in it.
    """
    bind = session.bind
    if (
        isinstance(bind, AsyncEngine)
        and bind.dialect.name == "postgresql"
        # Known once the engine has connected; until then the first reads keep a transaction.
        and getattr(bind.dialect, "default_isolation_level", None) == "READ COMMITTED"
        and not session.in_transaction()
    ):
        await session.connection(execution_options={"isolation_level": AUTOCOMMIT})


@asynccontextmanager
async def _session_of(context: Context) -> AsyncIterator[AsyncSession]:
    if context.request_session is not None:
        # Opened (and closed) by the HTTP endpoint, which checked the key in it.
        yield context.request_session
        return
    async with context.sessions() as session:
        yield session


class UnitOfWork(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        caller = self.execution_context.context
        if isinstance(caller, Caller):
            self.execution_context.context = Context.for_operation(caller)
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        context: Context = self.execution_context.context
        committed = False
        async with _session_of(context) as session:
            if self.execution_context.operation_type is OperationType.QUERY:
                await read_without_transaction(session)
            elif session.in_transaction():
                # Writes need a transaction of their own: end the read the key was checked in
                # (nothing to commit); the next statement begins one. Until then none is open,
                # so a mutation that asks a mall first (connect*) holds no lock meanwhile,
                # SQLite's write lock included.
                await session.commit()
            bind_tenant(session, context.shop_id)
            context.attach(session)
            try:
                yield
                result = self.execution_context.result
                errors = getattr(result, "errors", None)
                if context.failed or errors:
                    await session.rollback()
                else:
                    await session.commit()
                    committed = True
            except BaseException:
                await session.rollback()
                raise
            finally:
                context.attach(None)
        if not committed:
            context.jobs.discard()
            return
        try:
            await context.jobs.flush()
        except Exception:
            # The transaction is committed: failing the response now would invite a retry of
            # a mutation that succeeded. Log loudly instead.
            logger.exception(
                "jobs of a committed operation were not sent (request %s)",
                context.request_id,
                extra={"request_id": context.request_id},
            )
