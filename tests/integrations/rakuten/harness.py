"""Running the Rakuten platform against the fake: collect pages, crash after some."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from domain.platforms import PlatformAccount, PlatformError, SyncPage
from integrations.rakuten.platform import RakutenPlatform


@dataclass
class Run:
    pages: list[SyncPage]
    cursor: Mapping[str, str]
    error: PlatformError | None = None

    @property
    def order_ids(self) -> list[str]:
        return [order.external_id for page in self.pages for order in page.records.orders]

    @property
    def requests(self) -> int:
        return sum(page.stats.requests for page in self.pages)


async def run_sync(
    platform: RakutenPlatform,
    account: PlatformAccount,
    cursor: Mapping[str, str],
    *,
    since: datetime | None = None,
    stop_after: int | None = None,
) -> Run:
    """Pages until the sweep ends, a `PlatformError`, or `stop_after` pages (a crash)."""
    run = Run([], cursor)
    try:
        async for page in platform.sync_pages(account, cursor, since):
            run.pages.append(page)
            run.cursor = page.cursor
            if stop_after is not None and len(run.pages) >= stop_after:
                break
    except PlatformError as exc:
        run.error = exc
    return run
