import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from domain.ids import ConnectionId, new_id
from domain.platforms import PlatformAccount, PlatformRejected
from integrations.amazon.platform import AmazonPlatform
from integrations.amazon.webhooks import sign

BODY = (Path(__file__).parent / "payloads" / "order_change.json").read_bytes()


def _account(secret: str | None = "relay-secret", seller: str = "A2SELLER0JP") -> PlatformAccount:
    credentials = {"seller_id": seller}
    if secret is not None:
        credentials["notification_secret"] = secret
    return PlatformAccount(ConnectionId(new_id()), seller, credentials)


@pytest.fixture
async def platform() -> AsyncIterator[AmazonPlatform]:
    async with httpx.AsyncClient() as http:
        yield AmazonPlatform(http)


async def test_relay_signature_is_verified(platform: AmazonPlatform) -> None:
    signature = sign("relay-secret", BODY)

    assert platform.verify_webhook(_account(), {"X-Kizuki-Signature": signature}, BODY)
    assert platform.verify_webhook(_account(), {"x-kizuki-signature": signature.upper()}, BODY)


@pytest.mark.parametrize(
    ("account", "headers", "body"),
    [
        (_account(), {"X-Kizuki-Signature": sign("other-secret", BODY)}, BODY),
        (_account(), {"X-Kizuki-Signature": sign("relay-secret", BODY)}, BODY + b" "),
        (_account(), {}, BODY),
        (_account(secret=None), {"X-Kizuki-Signature": sign("", BODY)}, BODY),
    ],
)
async def test_unsigned_or_altered_notifications_fail_verification(
    platform: AmazonPlatform, account: PlatformAccount, headers: dict[str, str], body: bytes
) -> None:
    assert not platform.verify_webhook(account, headers, body)


async def test_order_change_asks_for_a_resync(platform: AmazonPlatform) -> None:
    event = platform.parse_webhook(_account(), {}, BODY)

    assert event.event_id == "e6bd0e6c-7eaa-4f3a-9cb7-8a3c2f9a1b2e"
    assert event.topic == "ORDER_CHANGE"
    assert event.resync is True
    assert len(event.records) == 0
    assert event.occurred_at == datetime(2026, 5, 2, 3, 0, tzinfo=UTC)
    assert event.refetch_order_ids == ("503-1234567-7654321",)


async def test_notifications_for_another_seller_or_type_are_rejected(
    platform: AmazonPlatform,
) -> None:
    other_type = json.loads(BODY)
    other_type["NotificationType"] = "ANY_OFFER_CHANGED"

    with pytest.raises(PlatformRejected, match="seller"):
        platform.parse_webhook(_account(seller="A9OTHER"), {}, BODY)
    with pytest.raises(PlatformRejected, match="ANY_OFFER_CHANGED"):
        platform.parse_webhook(_account(), {}, json.dumps(other_type).encode())
    with pytest.raises(PlatformRejected, match="Payload: Field required"):
        platform.parse_webhook(_account(), {}, b'{"NotificationType": "ORDER_CHANGE"}')
