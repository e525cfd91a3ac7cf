"""Test composition root: the database each test runs in, and services it may need.

Backends are chosen by environment:
- `KIZUKI_TEST_DATABASE_URL` (default: a SQLite file in a temporary folder). The schema comes
  from `alembic upgrade head` on either backend.
- `KIZUKI_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/15`). Tests marked `redis` are
  skipped with the reason when it is unreachable, unless `CI` is set, where they fail.

Each test runs inside one outer transaction that is rolled back; the sessions it opens join
it through SAVEPOINTs, so no rows leak between tests.
"""

import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from domain.db import AsyncSession, create_engine, session_factory
from domain.settings import Environment, Settings

pytest_plugins = [
    "tests.factories.shop",
    "tests.factories.customer",
    "tests.factories.order",
]

ROOT = Path(__file__).resolve().parent.parent


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def require_service(url: str, default_port: int, what: str) -> None:
    """Skip (or, in CI, fail) the current test when a needed service is down."""
    if _reachable(url, default_port):
        return
    message = f"{what} at {url} is unreachable"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("KIZUKI_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'kizuki-test.db'}"


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture(scope="session")
def migrated(database_url: str) -> str:
    """The test database at `alembic upgrade head`, from empty."""
    if database_url.startswith("postgresql"):
        require_service(database_url, 5432, "PostgreSQL")
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    if database_url.startswith("postgresql"):
        command.downgrade(config, "base")
    command.upgrade(config, "head")
    return database_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("KIZUKI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_available(redis_url: str) -> str:
    require_service(redis_url, 6379, "Redis")
    return redis_url


@pytest.fixture
def settings(migrated: str) -> Settings:
    return Settings(
        database_url=migrated,
        redis_url=None,
        secret_key=SecretStr("test-secret"),
        environment=Environment.DEVELOPMENT,
        _env_file=None,
    )


@pytest.fixture
async def engine(migrated: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        if transaction.is_active:
            await transaction.rollback()


@pytest.fixture
def sessions(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """The session factory every component under test uses: joined to the test transaction."""
    return session_factory(connection)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


@pytest.fixture
def unique() -> str:
    """A short random token, for names that must not collide across tests."""
    return uuid.uuid4().hex[:10]
