"""The unit of work on a schema of its own: commit, rollback and the job buffer."""

import uuid
from dataclasses import dataclass, field
from typing import Annotated

import pytest
import strawberry
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select

from api.context import Caller, Info, Principal, Services
from api.errors import DomainErrorHandler, UserError
from api.unit_of_work import UnitOfWork
from domain.audit.models import AuditLog
from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.ids import ApiKeyId, ShopId
from domain.jobs import Job, JobRequest
from domain.settings import Settings
from domain.shop.models import Role
from kizuki.events import InProcessEventBus
from tests.api.world import ShopWorld


@dataclass
class CommitCheckingQueue:
    """Records jobs, and whether the operation's transaction had ended when they came."""

    sessions: list[AsyncSession] = field(default_factory=list)
    sent: list[JobRequest] = field(default_factory=list)
    after_commit: list[bool] = field(default_factory=list)

    async def send(self, requests: list[JobRequest]) -> None:
        self.sent.extend(requests)
        self.after_commit.append(all(not s.in_transaction() for s in self.sessions))


@strawberry.type
class Done:
    ok: bool


@strawberry.type
class Query:
    ping: bool = True


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def work(
        self, info: Info, fail: str = ""
    ) -> Annotated[Done | UserError, strawberry.union("WorkResult")]:
        context = info.context
        queue = context.jobs.queue
        assert isinstance(queue, CommitCheckingQueue)
        queue.sessions.append(context.session)
        context.session.add(
            AuditLog(shop_id=context.shop_id, actor="test", action="work", target=fail)
        )
        await context.session.flush()
        context.jobs.enqueue(Job.PING, _job_id=f"ping-{fail}", note=fail)
        if fail == "user":
            raise InvalidInput("refused", field="fail")
        if fail == "bug":
            raise RuntimeError("boom")
        return Done(ok=True)


@pytest.fixture
def schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[UnitOfWork],
        exception_handlers=[DomainErrorHandler()],
    )


def caller(
    world: ShopWorld,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    queue: CommitCheckingQueue,
) -> Caller:
    services = Services(settings, sessions, queue, InProcessEventBus())
    principal = Principal(ShopId(world.shop.id), ApiKeyId(uuid.uuid4()), Role.ADMIN)
    return Caller(services, "test-request", principal)


async def audited(session: AsyncSession, world: ShopWorld) -> list[str]:
    rows = await session.exec(
        select(AuditLog.target)
        .where(AuditLog.shop_id == world.shop.id)
        .order_by(col(AuditLog.target))
    )
    return list(rows.all())


async def test_jobs_are_sent_only_after_commit(
    schema: strawberry.Schema,
    shop_a: ShopWorld,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    queue = CommitCheckingQueue()

    result = await schema.execute(
        'mutation { work(fail: "no") { ... on Done { ok } } }',
        context_value=caller(shop_a, settings, sessions, queue),
    )

    assert result.errors is None
    assert result.data == {"work": {"ok": True}}
    assert [(r.job, r.kwargs, r.job_id) for r in queue.sent] == [
        (Job.PING, {"note": "no"}, "ping-no")
    ]
    assert queue.after_commit == [True]
    assert await audited(session, shop_a) == ["no"]


@pytest.mark.parametrize("fail", ["user", "bug"])
async def test_a_failed_operation_writes_nothing_and_sends_no_job(
    schema: strawberry.Schema,
    shop_a: ShopWorld,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    fail: str,
) -> None:
    queue = CommitCheckingQueue()

    result = await schema.execute(
        "mutation($f: String!) { work(fail: $f) { __typename } }",
        variable_values={"f": fail},
        context_value=caller(shop_a, settings, sessions, queue),
    )

    if fail == "user":
        assert result.data == {"work": {"__typename": "UserError"}}
    else:
        assert result.errors is not None
    assert queue.sent == []
    assert await audited(session, shop_a) == []


async def test_each_operation_gets_its_own_context_and_session(
    schema: strawberry.Schema,
    shop_a: ShopWorld,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    queue = CommitCheckingQueue()
    shared = caller(shop_a, settings, sessions, queue)

    await schema.execute('mutation { work(fail: "one") { __typename } }', context_value=shared)
    await schema.execute('mutation { work(fail: "user") { __typename } }', context_value=shared)
    await schema.execute('mutation { work(fail: "two") { __typename } }', context_value=shared)

    assert len(set(map(id, queue.sessions))) == 3
    assert [request.job_id for request in queue.sent] == ["ping-one", "ping-two"]
    assert await audited(session, shop_a) == ["one", "two"]
