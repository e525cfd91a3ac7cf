"""Rakuten System Event Notification (システムイベント通知): XML POSTs carrying an auth key.

Rakuten does not sign the body; it puts the shop's notification auth key inside it
(`<authModel><authKey>`). Verification compares that key with the connection's
`notification_auth_key` credential in constant time; a connection without one accepts no
notification. A notification names orders only, so it becomes a `WebhookEvent` asking for a
re-sync (`resync=True`), and the sweep re-reads the orders through getOrder.
"""

import hashlib
import hmac

from domain.platforms import (
    PlatformAccount,
    PlatformRejected,
    WebhookEvent,
    WebhookOutcome,
    WebhookReply,
)
from integrations.rakuten.wire import Notification, parse_notification_xml

PLATFORM = "rakuten"
AUTH_KEY_CREDENTIAL = "notification_auth_key"
# What Rakuten expects back (N-000-000 accepted; E-400-101 auth key mismatch; E-400-100 bad
# values); the webhook endpoint answers with `notification_response(code)` as text/xml.
RESULT_ACCEPTED = "N-000-000"
RESULT_BAD_VALUES = "E-400-100"
RESULT_AUTH_MISMATCH = "E-400-101"
_EVENT_ID_LIMIT = 200


def notification_response(result_code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<responseModel><resultCode>{result_code}</resultCode></responseModel>"
    ).encode()


_RESULTS = {
    WebhookOutcome.ACCEPTED: (200, RESULT_ACCEPTED),
    # Rakuten re-sends what it was not told was received; a replay was received.
    WebhookOutcome.DUPLICATE: (200, RESULT_ACCEPTED),
    WebhookOutcome.UNVERIFIED: (401, RESULT_AUTH_MISMATCH),
    WebhookOutcome.UNUSABLE: (400, RESULT_BAD_VALUES),
}


def notification_reply(outcome: WebhookOutcome) -> WebhookReply:
    """The XML answer Rakuten expects for what became of a notification."""
    status, code = _RESULTS[outcome]
    return WebhookReply(status, "text/xml; charset=utf-8", notification_response(code))


def verify_notification(account: PlatformAccount, body: bytes) -> bool:
    """Whether the body carries this connection's auth key (constant-time comparison)."""
    expected = account.credentials.get(AUTH_KEY_CREDENTIAL, "")
    if not expected:
        return False
    try:
        notification = parse_notification_xml(body)
    except ValueError:
        return False
    given = notification.auth.auth_key or ""
    return hmac.compare_digest(given.encode(), expected.encode())


def _event_id(notification: Notification, body: bytes) -> str:
    if notification.request_ids:
        event_id = "rakuten:notify:" + "+".join(notification.request_ids)
        if len(event_id) <= _EVENT_ID_LIMIT:
            return event_id
        joined = "+".join(notification.request_ids).encode()
        return "rakuten:notify:" + hashlib.sha256(joined).hexdigest()
    if notification.orders and all(order.seq_id for order in notification.orders):
        keys = sorted(f"{order.order_number}:{order.seq_id}" for order in notification.orders)
        return "rakuten:orders:" + hashlib.sha256("|".join(keys).encode()).hexdigest()
    return "rakuten:body:" + hashlib.sha256(body).hexdigest()


def parse_notification(account: PlatformAccount, body: bytes) -> WebhookEvent:
    """A re-sync request for the orders a verified notification names."""
    try:
        notification = parse_notification_xml(body)
    except ValueError as exc:
        raise PlatformRejected(f"unusable Rakuten notification: {exc}", platform=PLATFORM) from exc
    topic = "order_notify" if notification.root == "orderNotifyModel" else "system_notify"
    numbers = tuple(dict.fromkeys(order.order_number for order in notification.orders))
    return WebhookEvent(
        event_id=_event_id(notification, body),
        topic=topic,
        resync=True,
        refetch_order_ids=numbers,
    )


def notified_order_numbers(body: bytes) -> tuple[str, ...]:
    """The order numbers a notification names, each once, in its order."""
    notification = parse_notification_xml(body)
    return tuple(dict.fromkeys(order.order_number for order in notification.orders))
