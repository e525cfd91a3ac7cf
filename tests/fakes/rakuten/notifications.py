"""System Event Notification bodies as Rakuten would POST them (XML, auth key inside)."""

from collections.abc import Sequence
from xml.sax.saxutils import escape


def order_notification(
    *, shop_url: str, auth_key: str, orders: Sequence[tuple[str, str]], order_type: int = 1
) -> bytes:
    """An `orderNotifyModel` naming (order number, seqId) pairs."""
    infos = "".join(
        "<orderInfoNotifyModel>"
        f"<orderNumber>{escape(number)}</orderNumber><seqId>{escape(seq)}</seqId>"
        f"<orderDate>2026-05-30 10:00:00</orderDate><orderType>{order_type}</orderType>"
        "<basketModel><itemId>1001</itemId><units>1</units></basketModel>"
        "</orderInfoNotifyModel>"
        for number, seq in orders
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><orderNotifyModel>'
        f"<authModel><contractId>C-1</contractId><shopUrl>{escape(shop_url)}</shopUrl>"
        f"<authKey>{escape(auth_key)}</authKey></authModel>{infos}</orderNotifyModel>"
    ).encode()


def system_notification(*, auth_key: str, request_id: str, order_number: str) -> bytes:
    """A `notifyModel` 4000:1100 (購入履歴変更通知) naming one order."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><notifyModel>'
        f"<authModel><authKey>{escape(auth_key)}</authKey></authModel>"
        f"<notifyInfoModel><requestId>{escape(request_id)}</requestId>"
        "<serviceId>4000</serviceId><functionId>1100</functionId>"
        '<value1 name="operation">update</value1>'
        f'<value2 name="orderNumber">{escape(order_number)}</value2>'
        "</notifyInfoModel></notifyModel>"
    ).encode()
