"""An app under test: real schema, real database (the test transaction), recording jobs."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from starlette.applications import Starlette

from api.app import create_app
from domain.db import AsyncSession
from domain.jobs import JobRequest
from domain.settings import Environment, Settings
from kizuki.events import InProcessEventBus
from tests.api.world import ShopWorld, build_shop


@dataclass
class RecordingJobQueue:
    """A `JobQueue` that keeps what it was sent."""

    sent: list[JobRequest] = field(default_factory=list)

    async def send(self, requests: list[JobRequest]) -> None:
        self.sent.extend(requests)


@dataclass
class GraphQLClient:
    http: httpx.AsyncClient

    async def post(
        self,
        query: str,
        *,
        key: str | None,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers=sent)

    async def run(
        self, query: str, *, key: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = await self.post(query, key=key, variables=variables)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def data(
        self, query: str, *, key: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        result = await self.run(query, key=key, variables=variables)
        assert "errors" not in result, result
        data: dict[str, Any] = result["data"]
        return data


@pytest.fixture
def jobs() -> RecordingJobQueue:
    return RecordingJobQueue()


@pytest.fixture
def events() -> InProcessEventBus:
    return InProcessEventBus()


@pytest.fixture
def production_settings(settings: Settings) -> Settings:
    return Settings(
        database_url=settings.database_url,
        redis_url=None,
        secret_key=SecretStr("test-secret"),
        environment=Environment.PRODUCTION,
        _env_file=None,
    )


@pytest.fixture
def make_app(
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    events: InProcessEventBus,
) -> Callable[[Settings], Starlette]:
    def make(settings: Settings) -> Starlette:
        return create_app(settings, sessions=sessions, job_queue=jobs, events=events)

    return make


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[GraphQLClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kizuki.test"
        ) as http,
    ):
        yield GraphQLClient(http)


@pytest.fixture
async def app(make_app: Callable[[Settings], Starlette], settings: Settings) -> Starlette:
    return make_app(settings)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[GraphQLClient]:
    async with serving(app) as graphql:
        yield graphql


@pytest.fixture
async def shop_a(session: AsyncSession) -> ShopWorld:
    world = await build_shop(session, "alpha")
    await session.commit()
    return world


@pytest.fixture
async def shop_b(session: AsyncSession, shop_a: ShopWorld) -> ShopWorld:
    world = await build_shop(session, "bravo")
    await session.commit()
    return world


@dataclass
class StatementLog:
    statements: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.statements.clear()

    @property
    def data_statements(self) -> list[str]:
        """Statements other than transaction control (SAVEPOINT, RELEASE, BEGIN …)."""
        control = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")
        return [s for s in self.statements if not s.lstrip().upper().startswith(control)]

    @property
    def beyond_authentication(self) -> list[str]:
        """Data statements other than the API key lookup every request makes."""
        return [s for s in self.data_statements if "api_key" not in s]


@pytest.fixture
def sql(engine: AsyncEngine) -> Iterator[StatementLog]:
    log = StatementLog()

    def record(*args: Any) -> None:
        log.statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield log
    event.remove(engine.sync_engine, "before_cursor_execute", record)


@contextlib.asynccontextmanager
async def live_server(app: Starlette) -> AsyncIterator[str]:
    """The app served by uvicorn on a free loopback port, in this event loop."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", ws="websockets-sansio", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
