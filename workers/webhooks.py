"""`process_webhook`: act on one delivery the webhook endpoint stored in the inbox.

Orders the delivery names are read again from the mall first, with no transaction open, then
the delivery is processed in one unit of work (`domain.sync.inbox`). Records refused
because they may be early (a skip before its contract is synced) make the job retry after a
sync, at most `WEBHOOK_TRIES` times in all (below the worker's `MAX_TRIES`, so the last of
them always closes the entry).
"""

import logging
import uuid

from arq import Retry

from domain.credentials import CredentialCipher
from domain.db import utcnow
from domain.ids import ShopId
from domain.platforms import PlatformError, PlatformUnavailable, SyncPage
from domain.sync.inbox import InboxOutcome, orders_to_refetch, process_inbox_entry
from workers.context import WorkerContext, unit_of_work

logger = logging.getLogger(__name__)

WEBHOOK_TRIES = 4
# Seconds before try n + 1: time for the sync enqueued by try n to store what was missing.
RETRY_DELAY_SECONDS = 60.0


def retry_delay(job_try: int) -> float:
    """60 s after the first try, then twice as long after each."""
    return RETRY_DELAY_SECONDS * 2.0 ** (job_try - 1)


async def process_webhook(ctx: WorkerContext, *, shop_id: str, inbox_id: str) -> None:
    """Store the delivery's records and the orders it names, act on its privacy request, ask
    for a sync; once (retried after a sync while records are refused, see the module)."""
    shop, entry_id = ShopId(uuid.UUID(shop_id)), uuid.UUID(inbox_id)
    cipher = CredentialCipher(ctx["settings"].secret_key.get_secret_value())
    last_try = ctx["job_try"] >= WEBHOOK_TRIES
    async with ctx["sessions"]() as session:
        refetch = await orders_to_refetch(
            session, shop, entry_id, platforms=ctx["platforms"], cipher=cipher
        )
    fetched: SyncPage | None = None
    problems: list[str] = []
    if refetch is not None:
        try:
            fetched = await refetch.platform.fetch_orders(refetch.account, refetch.order_ids)
        except PlatformUnavailable as error:
            if not last_try:
                raise Retry(
                    defer=max(error.retry_after or 0.0, retry_delay(ctx["job_try"]))
                ) from error
            problems.append(f"orders not read again: {error.message}")
        except PlatformError as error:
            problems.append(f"orders not read again: {error.message}")
    async with unit_of_work(ctx, shop_id=shop) as uow:
        outcome = await process_inbox_entry(
            uow.session,
            uow.jobs,
            shop,
            entry_id,
            platforms=ctx["platforms"],
            cipher=cipher,
            now=utcnow(),
            fetched=fetched,
            problems=problems,
            last_try=last_try,
        )
    if outcome is InboxOutcome.RETRY:
        logger.info("webhook %s has refused records; trying again after a sync", inbox_id)
        raise Retry(defer=retry_delay(ctx["job_try"]))
