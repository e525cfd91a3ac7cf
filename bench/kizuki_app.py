"""Kizuki's API as `kizuki serve` wires it, for `uvicorn --factory bench.kizuki_app:create_app`.

The benchmark starts both servers with the same uvicorn command line; this factory gives
Kizuki's app the runtime `kizuki serve` would (`open_runtime`: engine, event bus, job queue),
opened and closed with the ASGI lifespan. Settings come from `KIZUKI_*` variables.
"""

from contextlib import AsyncExitStack

from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app as create_api
from domain.settings import Settings
from kizuki.runtime import open_runtime


class KizukiServer:
    """The API app, built once the runtime is open at lifespan startup."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self._app is None:
            raise RuntimeError("the server got a request before its lifespan started")
        await self._app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with AsyncExitStack() as stack:
            message = await receive()
            if message["type"] != "lifespan.startup":
                return
            runtime = await stack.enter_async_context(open_runtime(self._settings))
            self._app = create_api(
                self._settings,
                job_queue=runtime.job_queue,
                events=runtime.events,
                sessions=runtime.sessions,
            )
            await send({"type": "lifespan.startup.complete"})
            await receive()
        await send({"type": "lifespan.shutdown.complete"})


def create_app() -> KizukiServer:
    return KizukiServer(Settings())
