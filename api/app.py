"""`create_app`: the API's composition root."""

import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from api.context import Services
from api.health import healthz, readyz
from api.http import GraphQLEndpoint, GraphQLView, graphiql_page
from api.request_id import RequestIdMiddleware
from api.schema import build_schema
from domain.db import AsyncSession, create_engine, session_factory
from domain.events import EventBus
from domain.jobs import JobQueue
from domain.settings import Settings


def create_app(
    settings: Settings,
    *,
    job_queue: JobQueue,
    events: EventBus,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    graphiql_headers: Mapping[str, str] | None = None,
) -> Starlette:
    """The ASGI app. Without `sessions` it owns an engine on `settings.database_url`,
    disposed when the app shuts down; with them (tests, the CLI) it needs no lifespan."""
    engine = None
    if sessions is None:
        engine = create_engine(settings.database_url, pool_size=settings.pool_size)
        sessions = session_factory(engine)
    services = Services(settings=settings, sessions=sessions, job_queue=job_queue, events=events)
    view = GraphQLView(build_schema(settings), services)
    graphiql = graphiql_page(graphiql_headers) if settings.graphiql_enabled else None
    endpoint = GraphQLEndpoint(view, services, graphiql)
    if not settings.is_development:
        # What exists now (schema, mappers, settings) lives as long as the process: frozen,
        # it is no longer walked by every full garbage collection during requests.
        gc.collect()
        gc.freeze()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if engine is not None:
                await engine.dispose()

    return Starlette(
        routes=[
            Route("/graphql", endpoint.http, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", endpoint.websocket),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz(services), methods=["GET"]),
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        lifespan=lifespan,
    )
