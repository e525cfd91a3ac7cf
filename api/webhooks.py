"""`POST /webhooks/{platform}/{connection_id}`: verify, store once, answer 200 fast.

The URL names the connection; no API key is involved (the mall signs the body instead).
Unknown connections, connections of another platform and ones left with nothing to verify
with (purged by a shop redaction) all answer the same 404. A body whose signature does not
verify answers 401 and writes nothing. A verified delivery is stored in the webhook inbox once
per event id and processed by the `process_webhook` job after commit; a replay answers 200 and
is not processed again. A disconnected connection still verifies with the webhook keys it
kept: its privacy requests are stored as a connected one's, anything else answers 200 and is
neither stored nor processed.
A platform that implements `WebhookReplies` (Rakuten expects XML result codes) shapes the
answers to deliveries of a known connection; answers before that stay Kizuki's.
"""

import logging
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.context import Services
from domain.connection.accounts import account_of
from domain.credentials import CredentialCipher
from domain.db import utcnow
from domain.jobs import JobBuffer
from domain.platforms import (
    PlatformError,
    StorePlatform,
    WebhookOutcome,
    WebhookReplies,
)
from domain.sync.inbox import Delivery, accept_webhook, find_webhook_connection, is_wanted

logger = logging.getLogger("kizuki.api")

# Mall webhooks are small; anything larger is not one.
MAX_BODY_BYTES = 5 * 1024 * 1024


def _answer(status: int, message: str) -> Response:
    return JSONResponse({"status": message}, status_code=status)


_DEFAULT_ANSWERS = {
    WebhookOutcome.ACCEPTED: (200, "accepted"),
    WebhookOutcome.DUPLICATE: (200, "duplicate"),
    WebhookOutcome.UNVERIFIED: (401, "signature does not verify"),
    WebhookOutcome.UNUSABLE: (400, "unusable webhook"),
}


def _reply(platform: StorePlatform, outcome: WebhookOutcome) -> Response:
    if isinstance(platform, WebhookReplies):
        reply = platform.webhook_reply(outcome)
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type)
    return _answer(*_DEFAULT_ANSWERS[outcome])


class WebhookEndpoint:
    """The Starlette endpoint; one per app, sharing the app's services."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._cipher = CredentialCipher(services.settings.secret_key.get_secret_value())

    async def handle(self, request: Request) -> Response:
        platform_name = str(request.path_params["platform"])
        try:
            connection_id = uuid.UUID(str(request.path_params["connection_id"]))
        except ValueError:
            return _answer(404, "not found")
        platform = self._services.platforms.get(platform_name)
        if platform is None:
            return _answer(404, "not found")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _answer(413, "too large")
        headers = {key.lower(): value for key, value in request.headers.items()}
        async with self._services.sessions() as session:
            connection = await find_webhook_connection(session, platform_name, connection_id)
        if connection is None:
            return _answer(404, "not found")
        account = account_of(connection, self._cipher)
        if not platform.verify_webhook(account, headers, body):
            return _reply(platform, WebhookOutcome.UNVERIFIED)
        try:
            event = platform.parse_webhook(account, headers, body)
        except PlatformError as error:
            logger.info("unusable %s webhook for %s: %s", platform_name, connection_id, error)
            return _reply(platform, WebhookOutcome.UNUSABLE)
        if not is_wanted(connection, event):
            # Answered as a success, or the mall would send it again and again.
            return _reply(platform, WebhookOutcome.ACCEPTED)
        jobs = JobBuffer(self._services.job_queue)
        delivery = Delivery(headers, body)
        async with self._services.sessions() as session:
            fresh = await accept_webhook(session, jobs, connection, event, delivery, now=utcnow())
            await session.commit()
        await jobs.flush()
        return _reply(platform, WebhookOutcome.ACCEPTED if fresh else WebhookOutcome.DUPLICATE)
