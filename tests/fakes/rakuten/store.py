"""The fake Rakuten shop's state: orders as RMS would return them, and the knobs tests turn.

Orders are kept as plain state and rendered into `OrderModel` JSON (getOrder version 10
shape, abridged to the fields Kizuki reads plus a few it ignores). Tests edit and cancel
orders after creation, expire the license key, inject failures on the Nth request and set
a rate limit whose violations are recorded.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tests.fakes.rakuten.clock import FakeClock

JST = timezone(timedelta(hours=9))
UNKNOWN = -9999
JSONObject = dict[str, object]


def rms_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(JST).strftime("%Y-%m-%dT%H:%M:%S+0900")


@dataclass
class FakeBuyer:
    family_name: str = "山田"
    first_name: str = "花子"
    phone: str = "090-1234-5678"
    # Rakuten hands out relay addresses (あんしんメルアド), never the buyer's own.
    email: str = "815db2ab3s1@pc.fw.rakuten.ne.jp"

    @classmethod
    def numbered(cls, index: int) -> "FakeBuyer":
        digest = hashlib.sha256(str(index).encode()).hexdigest()[:10]
        return cls(
            family_name="山田",
            first_name=f"花子{index}",
            phone=f"090-{index // 10000 % 10000:04d}-{index % 10000:04d}",
            email=f"{digest}s1@pc.fw.rakuten.ne.jp",
        )


@dataclass
class FakeItem:
    name: str = "有機ほうじ茶 100g"
    manage_number: str = "houjicha-100"
    item_number: str = "H100"
    price: int = 1980
    units: int = 1
    selected_choice: str | None = None
    merchant_sku: str | None = "SKU-H100"


@dataclass
class FakeChange:
    change_type: int
    change_reason: int
    change_reason_detail: int
    applied_at: datetime
    fixed_at: datetime | None = None


@dataclass
class FakeOrder:
    number: str
    ordered_at: datetime
    progress: int = 500
    order_type: int = 1
    reserve_number: str | None = None
    reserve_delivery_count: int | None = None
    buyer: FakeBuyer = field(default_factory=FakeBuyer)
    items: list[FakeItem] = field(default_factory=lambda: [FakeItem()])
    postage_price: int = 0
    delivery_price: int = 0
    payment_charge: int = 0
    coupon: int = 0
    changes: list[FakeChange] = field(default_factory=list)
    # Replaces keys of the rendered JSON (None deletes): how tests make malformed orders.
    overrides: JSONObject = field(default_factory=dict)

    @property
    def goods_price(self) -> int:
        return sum(item.price * item.units for item in self.items)

    def render(self) -> JSONObject:
        postage = self.postage_price
        total = UNKNOWN if postage == UNKNOWN else self.goods_price + postage
        request = UNKNOWN
        if UNKNOWN not in (total, self.delivery_price):
            request = total + self.delivery_price + self.payment_charge - self.coupon
        body: JSONObject = {
            "orderNumber": self.number,
            "orderProgress": self.progress,
            "subStatusId": None,
            "orderDatetime": rms_time(self.ordered_at),
            "shopOrderCfmDatetime": rms_time(self.ordered_at + timedelta(hours=1)),
            "orderFixDatetime": None,
            "shippingCmplRptDatetime": (
                rms_time(self.ordered_at + timedelta(days=1)) if self.progress >= 500 else None
            ),
            "orderType": self.order_type,
            "reserveNumber": self.reserve_number,
            "reserveDeliveryCount": self.reserve_delivery_count,
            "rakutenMemberFlag": 1,
            "goodsPrice": self.goods_price,
            "postagePrice": postage,
            "deliveryPrice": self.delivery_price,
            "paymentCharge": self.payment_charge,
            "totalPrice": total,
            "requestPrice": request,
            "couponAllTotalPrice": self.coupon,
            "modifyFlag": 0,
            "OrdererModel": self._orderer(),
            "PointModel": {"usedPoint": 0},
            "PackageModelList": [
                {
                    "basketId": 1,
                    "postagePrice": postage,
                    "goodsPrice": self.goods_price,
                    "ItemModelList": [
                        _item(index, item) for index, item in enumerate(self.items, start=1)
                    ],
                }
            ],
            "ChangeReasonModelList": [
                {
                    "changeId": index,
                    "changeType": change.change_type,
                    "changeTypeDetail": None,
                    "changeReason": change.change_reason,
                    "changeReasonDetail": change.change_reason_detail,
                    "changeApplyDatetime": rms_time(change.applied_at),
                    "changeFixDatetime": rms_time(change.fixed_at),
                    "changeCmplDatetime": rms_time(change.fixed_at),
                }
                for index, change in enumerate(self.changes, start=1)
            ],
        }
        for key, value in self.overrides.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    def _orderer(self) -> JSONObject:
        parts = self.buyer.phone.split("-")
        return {
            "zipCode1": "150",
            "zipCode2": "0001",
            "prefecture": "東京都",
            "city": "渋谷区",
            "subAddress": "神宮前1-1-1",
            "familyName": self.buyer.family_name,
            "firstName": self.buyer.first_name,
            "familyNameKana": "ヤマダ",
            "firstNameKana": "ハナコ",
            "phoneNumber1": parts[0] if parts else None,
            "phoneNumber2": parts[1] if len(parts) > 1 else None,
            "phoneNumber3": parts[2] if len(parts) > 2 else None,
            "emailAddress": self.buyer.email,
            "sex": "女",
            "birthYear": 1985,
            "birthMonth": 4,
            "birthDay": 12,
        }


def _item(index: int, item: FakeItem) -> JSONObject:
    return {
        "itemDetailId": index,
        "itemName": item.name,
        "itemId": 1000 + index,
        "itemNumber": item.item_number,
        "manageNumber": item.manage_number,
        "price": item.price,
        "units": item.units,
        "includeTaxFlag": 1,
        "includePostageFlag": 0,
        "selectedChoice": item.selected_choice,
        "taxRate": 0.08,
        "priceTaxIncl": item.price,
        "deleteItemFlag": 0,
        "SkuModelList": [
            {"variantId": "v1", "merchantDefinedSkuId": item.merchant_sku, "skuInfo": None}
        ],
    }


@dataclass
class LoggedRequest:
    number: int
    path: str
    at: datetime
    body: JSONObject
    status: int = 200


@dataclass
class RakutenStore:
    """One shop on the fake RMS, and every knob of its API."""

    clock: FakeClock
    shop_id: str = "402321"
    service_secret: str = "SP402321_secret"
    license_key: str = "SL402321_license"
    license_expires_at: datetime | None = None
    disabled_functions: set[str] = field(default_factory=set)
    # searchOrder returns at most this many numbers per search (RMS: 15,000).
    result_cap: int = 15_000
    # Whether totalRecordsAmount counts every hit or stops at the cap (RMS: unknown).
    report_true_total: bool = True
    # Requests closer together than 1/limit seconds get `throttle_status` and are recorded.
    rate_limit_per_second: float | None = None
    throttle_status: int = 503
    # Sent as Retry-After (seconds) with throttled answers when set.
    retry_after: int | None = None
    # Request number (1-based, every request counts) → "500", "503", "timeout".
    failures: dict[int, str] = field(default_factory=dict)
    hang_seconds: float = 1.0
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    violations: list[LoggedRequest] = field(default_factory=list)
    _last_accepted: datetime | None = None
    _sequence: int = 0

    # ---- orders -----------------------------------------------------------------------

    def add_order(
        self,
        ordered_at: datetime,
        *,
        progress: int = 500,
        order_type: int = 1,
        reserve_number: str | None = None,
        reserve_delivery_count: int | None = None,
        buyer: FakeBuyer | None = None,
        items: list[FakeItem] | None = None,
        postage_price: int = 0,
        delivery_price: int = 0,
    ) -> FakeOrder:
        self._sequence += 1
        moment = ordered_at.replace(microsecond=0)
        day = moment.astimezone(JST).strftime("%Y%m%d")
        order = FakeOrder(
            number=f"{self.shop_id}-{day}-{self._sequence:010d}",
            ordered_at=moment,
            progress=progress,
            order_type=order_type,
            reserve_number=reserve_number,
            reserve_delivery_count=reserve_delivery_count,
            buyer=buyer or FakeBuyer.numbered(self._sequence),
            items=items if items is not None else [FakeItem()],
            postage_price=postage_price,
            delivery_price=delivery_price,
        )
        self.orders[order.number] = order
        return order

    def add_spread(
        self, count: int, start: datetime, end: datetime, *, buyers: int | None = None
    ) -> list[FakeOrder]:
        """`count` orders evenly over [start, end]; `buyers`: that many distinct buyers."""
        step = (end - start) / max(count - 1, 1)
        return [
            self.add_order(
                start + step * index,
                buyer=FakeBuyer.numbered(index % buyers) if buyers else None,
            )
            for index in range(count)
        ]

    def cancel(
        self,
        number: str,
        *,
        by_customer: bool = True,
        detail: int = 1,
        at: datetime | None = None,
    ) -> FakeOrder:
        """Cancellation requested then confirmed: 800 → 900 with its ChangeReasonModel."""
        order = self.orders[number]
        when = (at or self.clock()).replace(microsecond=0)
        order.changes.append(
            FakeChange(
                change_type=1,
                change_reason=1 if by_customer else 0,
                change_reason_detail=detail,
                applied_at=when,
                fixed_at=when,
            )
        )
        order.progress = 900
        return order

    def edit(
        self,
        number: str,
        *,
        units: int | None = None,
        postage_price: int | None = None,
        delivery_price: int | None = None,
        at: datetime | None = None,
    ) -> FakeOrder:
        """A shop-side change (変更確定, changeType 5) of quantity or fees."""
        order = self.orders[number]
        when = (at or self.clock()).replace(microsecond=0)
        if units is not None:
            order.items[0].units = units
        if postage_price is not None:
            order.postage_price = postage_price
        if delivery_price is not None:
            order.delivery_price = delivery_price
        order.changes.append(FakeChange(5, 1, 6, applied_at=when, fixed_at=when))
        return order

    # ---- API plumbing -----------------------------------------------------------------

    def esa_header(self) -> str:
        import base64

        token = base64.b64encode(f"{self.service_secret}:{self.license_key}".encode())
        return f"ESA {token.decode()}"

    def credentials(self) -> dict[str, str]:
        return {
            "service_secret": self.service_secret,
            "license_key": self.license_key,
            "shop_url": f"fake-shop-{self.shop_id}",
        }

    def fail(self, first: int, count: int, kind: str) -> None:
        """Requests `first` … `first + count - 1` (1-based) fail with `kind`."""
        for number in range(first, first + count):
            self.failures[number] = kind

    def next_request(self, path: str, body: JSONObject) -> LoggedRequest:
        logged = LoggedRequest(len(self.requests) + 1, path, self.clock(), body)
        self.requests.append(logged)
        return logged

    def throttled(self, logged: LoggedRequest) -> bool:
        """Whether this request came too soon after the last accepted one (recorded)."""
        limit = self.rate_limit_per_second
        if limit is not None and self._last_accepted is not None:
            gap = (logged.at - self._last_accepted).total_seconds()
            if gap < 1.0 / limit - 1e-6:
                self.violations.append(logged)
                return True
        self._last_accepted = logged.at
        return False

    def searches(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path.endswith("searchOrder/") and r.status == 200]
