"""`create_app`: the API's composition root."""

import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from api.context import Services
from api.health import healthz, readyz
from api.http import GraphQLEndpoint, GraphQLView, graphiql_page
from api.request_id import RequestIdMiddleware
from api.schema import build_schema
from api.webhooks import WebhookEndpoint
from domain.db import AsyncSession, create_engine, session_factory
from domain.events import EventBus
from domain.jobs import JobQueue
from domain.platforms import StorePlatform
from domain.settings import Settings
from integrations import build_platforms

# Mall APIs answer within this or count as unavailable.
HTTP_TIMEOUT_SECONDS = 30.0


def create_app(
    settings: Settings,
    *,
    job_queue: JobQueue,
    events: EventBus,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    graphiql_headers: Mapping[str, str] | None = None,
    platforms: Mapping[str, StorePlatform] | None = None,
) -> Starlette:
    """The ASGI app. Without `sessions` it owns an engine on `settings.database_url` and an
    HTTP client with every installed platform on it (unless `platforms` are given), closed
    when the app shuts down. With `sessions` (tests, the CLI) it needs no lifespan, and it
    has the `platforms` it is given, or none."""
    engine = None
    http = None
    if sessions is None:
        engine = create_engine(settings.database_url, pool_size=settings.pool_size)
        sessions = session_factory(engine)
        if platforms is None:
            http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS)
            platforms = build_platforms(http)
    services = Services(
        settings=settings,
        sessions=sessions,
        job_queue=job_queue,
        events=events,
        platforms=platforms if platforms is not None else {},
    )
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
            if http is not None:
                await http.aclose()

    return Starlette(
        routes=[
            Route("/graphql", endpoint.http, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", endpoint.websocket),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz(services), methods=["GET"]),
            Route(
                "/webhooks/{platform}/{connection_id}",
                WebhookEndpoint(services).handle,
                methods=["POST"],
            ),
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        lifespan=lifespan,
    )
