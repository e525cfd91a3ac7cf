"""`process_webhook`: act on one delivery the webhook endpoint stored in the inbox."""

import uuid

from domain.credentials import CredentialCipher
from domain.db import utcnow
from domain.ids import ShopId
from domain.sync.inbox import process_inbox_entry
from workers.context import WorkerContext, unit_of_work


async def process_webhook(ctx: WorkerContext, *, shop_id: str, inbox_id: str) -> None:
    """Store the delivery's records, act on its privacy request, ask for a sync; once."""
    shop = ShopId(uuid.UUID(shop_id))
    cipher = CredentialCipher(ctx["settings"].secret_key.get_secret_value())
    async with unit_of_work(ctx, shop_id=shop) as uow:
        await process_inbox_entry(
            uow.session,
            uow.jobs,
            shop,
            uuid.UUID(inbox_id),
            platforms=ctx["platforms"],
            cipher=cipher,
            now=utcnow(),
        )
