"""What resolvers see: the caller, its unit of work and its loaders.

`Caller` is built once per HTTP request or WebSocket connection (after authentication);
`Context` once per GraphQL operation, by the unit of work, so concurrent operations on one
WebSocket never share a session, a job buffer or a DataLoader cache.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.loaders import Loaders
from domain.db import AsyncSession
from domain.events import EventBus
from domain.ids import ApiKeyId, ShopId
from domain.jobs import JobBuffer, JobQueue
from domain.platforms import StorePlatform
from domain.settings import Settings
from domain.shop.models import Role

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Services:
    """What the composition root hands the API, shared by every request."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    job_queue: JobQueue
    events: EventBus
    # Every installed store platform, by name; connect mutations and webhooks use them.
    platforms: Mapping[str, StorePlatform] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the shop and role of an authenticated API key."""

    shop_id: ShopId
    api_key_id: ApiKeyId
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"api_key:{self.api_key_id}"


@dataclass(eq=False)
class Caller:
    """One HTTP request or WebSocket connection; `principal` is None until authenticated."""

    services: Services
    request_id: str
    principal: Principal | None = None
    # Over HTTP, the session the key was checked in: the operation goes on in it (one
    # connection and transaction per request). WebSocket operations each open their own.
    session: AsyncSession | None = None
    # Set by strawberry from a WebSocket's `connection_init` payload.
    connection_params: dict[str, object] | None = None


@dataclass(eq=False)
class Context:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    principal: Principal
    jobs: JobBuffer
    events: EventBus
    request_id: str
    platforms: Mapping[str, StorePlatform] = field(default_factory=dict)
    # Set when a mutation answered with a UserError: the unit of work then rolls back.
    failed: bool = False
    # The caller's open session, when it has one (see `Caller.session`).
    request_session: AsyncSession | None = None
    loaders: Loaders = field(init=False)
    _session: AsyncSession | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    # `api.lookahead.selects` answers, by (AST node id, path): the document outlives the operation.
    lookahead: dict[tuple[int, tuple[str, ...]], bool] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self)

    @classmethod
    def for_operation(cls, caller: Caller) -> "Context":
        if caller.principal is None:
            raise RuntimeError("an operation ran for an unauthenticated caller")
        services = caller.services
        return cls(
            settings=services.settings,
            sessions=services.sessions,
            principal=caller.principal,
            jobs=JobBuffer(services.job_queue),
            events=services.events,
            request_id=caller.request_id,
            platforms=services.platforms,
            request_session=caller.session,
        )

    @property
    def shop_id(self) -> ShopId:
        return self.principal.shop_id

    @property
    def api_key_id(self) -> ApiKeyId:
        return self.principal.api_key_id

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def session(self) -> AsyncSession:
        """The operation's session; only inside the unit of work."""
        if self._session is None:
            raise RuntimeError("no session: the unit of work is not open")
        return self._session

    def attach(self, session: AsyncSession | None) -> None:
        self._session = session

    async def run(
        self,
        service: Callable[Concatenate[AsyncSession, ShopId, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """`service(session, shop_id, *args, **kwargs)`, one at a time.

        GraphQL resolves sibling fields and DataLoader batches concurrently, but a session
        runs one statement at a time: every database call of the operation goes through here.
        """
        async with self._lock:
            return await service(self.session, self.shop_id, *args, **kwargs)


Info = strawberry.Info[Context, None]
