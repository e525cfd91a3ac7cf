import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.fakes.loopback import serve_on_loopback


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.method} {request.url.path}")


async def test_serves_an_app_over_real_http() -> None:
    app = Starlette(routes=[Route("/{path:path}", _echo, methods=["GET", "POST"])])
    async with serve_on_loopback(app) as base_url, httpx.AsyncClient() as http:
        response = await http.post(f"{base_url}/orders")
    assert response.status_code == 200
    assert response.text == "POST /orders"
