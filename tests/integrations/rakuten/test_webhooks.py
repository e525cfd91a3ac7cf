from pathlib import Path

import pytest

from domain.ids import ConnectionId, new_id
from domain.platforms import PlatformAccount, PlatformRejected, WebhookOutcome
from integrations.rakuten.platform import RakutenPlatform
from integrations.rakuten.webhooks import notification_response, notified_order_numbers
from tests.fakes.rakuten.notifications import order_notification, system_notification

PAYLOADS = Path(__file__).parent / "payloads"
KEY = "nk-402321-secret"


def _account(key: str | None = KEY) -> PlatformAccount:
    credentials = {"service_secret": "s", "license_key": "l", "shop_url": "fake-shop-402321"}
    if key is not None:
        credentials["notification_auth_key"] = key
    return PlatformAccount(ConnectionId(new_id()), "fake-shop-402321", credentials)


@pytest.mark.parametrize("payload", ["order_notify.xml", "system_notify.xml"])
def test_a_notification_with_the_auth_key_verifies(platform: RakutenPlatform, payload: str) -> None:
    body = (PAYLOADS / payload).read_bytes()
    assert platform.verify_webhook(_account(), {}, body)


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("another-key", (PAYLOADS / "order_notify.xml").read_bytes()),
        (None, (PAYLOADS / "order_notify.xml").read_bytes()),  # no key configured
        ("", (PAYLOADS / "order_notify.xml").read_bytes()),
        (KEY, order_notification(shop_url="x", auth_key="", orders=[("1-2-3", "1")])),
        (KEY, b"<orderNotifyModel><authModel><authKey>nk-402321-secre"),
        (KEY, b'{"authKey": "nk-402321-secret"}'),
        (
            KEY,
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY k "nk-402321-secret">]>'
            b"<orderNotifyModel><authModel><authKey>&k;</authKey></authModel></orderNotifyModel>",
        ),
    ],
    ids=["wrong-key", "no-key", "blank-key", "blank-auth", "truncated", "json", "dtd"],
)
def test_a_notification_without_the_right_key_is_refused(
    platform: RakutenPlatform, key: str | None, body: bytes
) -> None:
    assert not platform.verify_webhook(_account(key), {}, body)


def test_an_order_notification_asks_for_a_resync_with_a_stable_id(
    platform: RakutenPlatform,
) -> None:
    body = (PAYLOADS / "order_notify.xml").read_bytes()
    event = platform.parse_webhook(_account(), {}, body)
    assert event.resync
    assert event.topic == "order_notify"
    assert len(event.records) == 0
    assert event.refetch_order_ids == (
        "402321-20260530-0000009001",
        "402321-20260530-0000009002",
    )
    assert event.event_id.startswith("rakuten:orders:")
    assert platform.parse_webhook(_account(), {}, body).event_id == event.event_id
    assert notified_order_numbers(body) == (
        "402321-20260530-0000009001",
        "402321-20260530-0000009002",
    )
    other = order_notification(
        shop_url="fake-shop-402321", auth_key=KEY, orders=[("402321-20260530-0000009001", "78")]
    )
    assert platform.parse_webhook(_account(), {}, other).event_id != event.event_id


def test_a_system_notification_uses_its_request_id(platform: RakutenPlatform) -> None:
    body = (PAYLOADS / "system_notify.xml").read_bytes()
    event = platform.parse_webhook(_account(), {}, body)
    assert event.event_id == "rakuten:notify:REQ-20260530-000123"
    assert event.topic == "system_notify"
    assert event.resync
    assert event.refetch_order_ids == ("402321-20260505-0000001002",)
    assert notified_order_numbers(body) == ("402321-20260505-0000001002",)
    built = system_notification(auth_key=KEY, request_id="R-9", order_number="1-2-3")
    assert platform.parse_webhook(_account(), {}, built).event_id == "rakuten:notify:R-9"


def test_a_notification_without_ids_is_identified_by_its_body(platform: RakutenPlatform) -> None:
    body = b"<orderNotifyModel><authModel><authKey>k</authKey></authModel></orderNotifyModel>"
    event = platform.parse_webhook(_account(), {}, body)
    assert event.event_id.startswith("rakuten:body:")


def test_an_unusable_notification_is_rejected(platform: RakutenPlatform) -> None:
    with pytest.raises(PlatformRejected, match="unknown notification root"):
        platform.parse_webhook(_account(), {}, b"<html></html>")


def test_the_acknowledgement_is_the_xml_rakuten_expects() -> None:
    assert notification_response("N-000-000").endswith(
        b"<responseModel><resultCode>N-000-000</resultCode></responseModel>"
    )


def test_replies_are_the_xml_rakuten_expects(platform: RakutenPlatform) -> None:
    replies = {outcome: platform.webhook_reply(outcome) for outcome in WebhookOutcome}

    assert {outcome: reply.status for outcome, reply in replies.items()} == {
        WebhookOutcome.ACCEPTED: 200,
        WebhookOutcome.DUPLICATE: 200,
        WebhookOutcome.UNVERIFIED: 401,
        WebhookOutcome.UNUSABLE: 400,
    }
    assert replies[WebhookOutcome.ACCEPTED].body == notification_response("N-000-000")
    assert replies[WebhookOutcome.UNVERIFIED].body == notification_response("E-400-101")
    assert replies[WebhookOutcome.UNUSABLE].body == notification_response("E-400-100")
    assert all(r.content_type.startswith("text/xml") for r in replies.values())
