"""ORDER_CHANGE notifications, relayed to Kizuki's webhook endpoint.

Amazon delivers ORDER_CHANGE only to an Amazon SQS queue, never over HTTP, and SQS messages
carry no signature Kizuki could check. A relay (a small process or Lambda the operator runs
next to the queue) reads each message and POSTs its body, the notification JSON unchanged, to
`/webhooks/amazon/<connection id>`, signing the raw body with the connection's shared secret
`credentials["notification_secret"]`: HMAC-SHA256, hex, in the header `X-Kizuki-Signature`.

Kizuki itself does not poll SQS: that relay is not implemented here. Notifications carry no
prices and no buyer, so a parsed one asks for an incremental sync (`resync`) and names its
order in `refetch_order_ids`, which the platform reads again with getOrder and getOrderItems
however old it is; polling getOrders stays the source of truth, as Amazon advises, since
notifications can be late or lost.
"""

import hashlib
import hmac
from collections.abc import Mapping

from pydantic import ValidationError

from domain.platforms import PlatformAccount, PlatformRejected, WebhookEvent
from integrations.amazon import wire
from integrations.amazon.mapping import PLATFORM

SIGNATURE_HEADER = "x-kizuki-signature"
SECRET_KEY = "notification_secret"
ORDER_CHANGE = "ORDER_CHANGE"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def sign(secret: str, body: bytes) -> str:
    """The signature a relay puts in `X-Kizuki-Signature` for this body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_webhook(account: PlatformAccount, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the relay signed this raw body with the connection's secret (constant time)."""
    secret = account.credentials.get(SECRET_KEY)
    signature = _header(headers, SIGNATURE_HEADER)
    if not secret or not signature:
        return False
    return hmac.compare_digest(sign(secret, body), signature.strip().lower())


def parse_webhook(
    account: PlatformAccount, headers: Mapping[str, str], body: bytes
) -> WebhookEvent:
    """An ORDER_CHANGE for this seller as a resync request, keyed by its notification id."""
    try:
        notification = wire.Notification.model_validate_json(body)
    except ValidationError as exc:
        raise PlatformRejected(
            f"not an ORDER_CHANGE notification: {wire.field_problem(exc)}", platform=PLATFORM
        ) from exc
    if notification.NotificationType != ORDER_CHANGE:
        raise PlatformRejected(
            f"unexpected notification type {notification.NotificationType!r}", platform=PLATFORM
        )
    change = notification.Payload.OrderChangeNotification
    seller = account.credentials.get("seller_id") or account.external_account_id
    if change.SellerId != seller:
        raise PlatformRejected(
            f"notification for seller {change.SellerId!r}, not this account", platform=PLATFORM
        )
    trigger = change.OrderChangeTrigger
    return WebhookEvent(
        event_id=notification.NotificationMetadata.NotificationId,
        topic=ORDER_CHANGE,
        resync=True,
        refetch_order_ids=(change.AmazonOrderId,),
        occurred_at=(trigger.TimeOfOrderChange if trigger else None) or notification.EventTime,
    )
