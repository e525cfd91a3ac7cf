"""The fake Shopify of `bench/ingest.py`, in an OS process of its own, as a remote mall is.

`python -m bench.ingest --serve-fake` runs `serve_fake` in that process; `FakeMall` starts it,
reads its URL and stops it.
"""

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from starlette.types import ASGIApp, Receive, Scope, Send

from bench.database import BenchSetupError
from bench.servers import cpu_seconds

TOKEN = "shpat_bench"
SECRET = "whsec-kizuki-bench"
SHOP_DOMAIN = "kizuki-bench.myshopify.com"


def account(base_url: str) -> tuple[dict[str, str], str]:
    """The credentials and base URL of the fake shop's account."""
    credentials = {"shop_domain": SHOP_DOMAIN, "access_token": TOKEN, "client_secret": SECRET}
    return credentials, base_url


async def serve_fake(orders: int, seed: int, restore_rate: float, latency_ms: float) -> None:
    """Generate and warm the shop, print the base URL, serve until stdin closes; each answer
    waits `latency_ms` first (a real mall is a network away)."""
    from tests.fakes.loopback import serve_on_loopback
    from tests.fakes.shopify import ALL_SCOPES, FakeShopify, Knobs, ShopifyStore, generate

    store = ShopifyStore(lambda: datetime.now(UTC), shop_domain=SHOP_DOMAIN)
    generate(store, orders=orders, seed=seed)
    store.warm()
    knobs = Knobs(max_available=2_000.0, restore_rate=restore_rate)
    fake = FakeShopify(store, tokens={TOKEN: ALL_SCOPES}, knobs=knobs)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if latency_ms > 0 and scope["type"] == "http":
            await asyncio.sleep(latency_ms / 1000)
        await fake.app(scope, receive, send)

    await _warm_answers(fake.app)
    async with serve_on_loopback(app) as base_url:
        print(base_url, flush=True)  # noqa: T201
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def _warm_answers(app: ASGIApp) -> None:
    """Read every page once, in process, as the sync will: the fake keeps each order's answer
    for the query's shape, so the timed sync pays Shopify's serving time, not the fake's."""
    import httpx

    from domain.ids import ConnectionId
    from domain.platforms import PlatformAccount
    from integrations import build_platforms

    credentials, url = account("http://fake")
    target = PlatformAccount(ConnectionId(uuid.uuid4()), SHOP_DOMAIN, credentials, url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        async for _ in build_platforms(http)["shopify"].sync_pages(target, {}, None):
            pass


class FakeMall:
    """The fake shop's process: started, its URL read, stopped by closing its stdin."""

    def __init__(self, orders: int, seed: int, restore_rate: float, latency_ms: float) -> None:
        command = [sys.executable, "-m", "bench.ingest", "--serve-fake", "--orders", str(orders)]
        command += ["--seed", str(seed), "--restore-rate", str(restore_rate)]
        command += ["--latency-ms", str(latency_ms)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.stop()
            raise BenchSetupError("the fake Shopify did not start")

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
