"""One session and one transaction per GraphQL operation.

The operation's `Context` is made when the operation starts. The session opens only for
execution, so a document refused by validation or limits never touches the database, and a
subscription holds no connection while it waits for events. Commit on success; roll back on
any error or `UserError`; send buffered jobs only after the commit, drop them otherwise.
"""

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from strawberry.extensions import SchemaExtension

from api.context import Caller, Context
from domain.db import AsyncSession, bind_tenant

logger = logging.getLogger("kizuki.api")


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
