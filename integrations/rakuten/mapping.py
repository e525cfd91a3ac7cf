"""Rakuten orders (getOrder `OrderModel`) to canonical records: the only translation point.

Rules, each a decision the tests hold us to:

- **External id** of an order: `orderNumber`.
- **Status** (`orderProgress`): 100-400 open; 500/600/700 fulfilled; 800 (キャンセル確定待ち)
  stays open, because a pending cancellation can still be withdrawn (changeType 3) and the
  trailing re-scan will see the 900; 900 cancelled, or refunded when a change reason records a
  return after receipt (changeReasonDetail 2 受取後の返品, 15 返品(破損・品間違い)).
- **Money**: `total_amount` = goodsPrice + postagePrice + deliveryPrice + paymentCharge +
  additionalFeeOccurAmountToUser - couponAllTotalPrice (the RMS 総合計 formula), in yen.
  `-9999` means "not known yet" (送料・代引料 未確定): an unknown fee counts as 0, never as
  -9999; the re-scan replaces the order once Rakuten knows it. An unknown or negative
  goodsPrice, or any other negative amount, rejects the order: it has no usable total.
  Points (`PointModel.usedPoint`) are a way to pay, not a discount, so they are not subtracted.
- **Times**: `+0900` → aware UTC. `source_updated_at` is the latest of every timestamp the
  order carries (order, confirmation, fix, shipping, change reasons): Rakuten has no
  last-modified field, these only grow as an order moves on, and an equal time still replaces
  the stored version, so a re-read never loses a change.
- **Customer**: Rakuten's Order API exposes no member id. The external id is, in order of
  preference: `tel:` + SHA-256 of (E.164 phone, NFKC name without spaces); `mail:` + SHA-256 of
  the masked address; `order:` + the order number (a one-off buyer). Phone plus name is what
  shops themselves use to recognise repeat buyers: it survives Rakuten re-issuing masked
  addresses (whether they are stable per buyer is not documented), and family members sharing a
  landline stay apart. The cost: a buyer who changes phone number or spells the name
  differently becomes a second identity (ingest's identity merge may join them later). The
  masked `…@pc.fw.rakuten.ne.jp` address is passed through as the email: ingest marks it
  masked and never matches identities on it. Hashes keep contact data out of external ids.
- **Subscriptions**: orderType 4 (定期購入) and 5 (頒布会) with a `reserveNumber` give a
  `SubscriptionRecord` keyed by the reserve number, and the order carries it as
  `subscription_external_id`. Started: the application date in the reserve number
  (`shop-yyyyMMdd-…-r`). Interval: read from the item's option text (`2ヶ月ごと`, `隔週` …),
  else 30 days. Events, only where the order is evidence: delivery 1 → `started`; a delivery
  cancelled for the customer's reasons (changeReason 1) → `skipped` (the Order API cannot tell
  a skipped delivery from the end of the application; 解約 is only visible in the ReserveAPI).
"""

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from domain.ingest.contact import e164
from domain.order.models import OrderStatus
from domain.platforms import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    RecordBatch,
    RejectedRecord,
    SubscriptionEventRecord,
    SubscriptionRecord,
)
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus
from integrations.rakuten.wire import (
    JST,
    UNKNOWN_AMOUNT,
    ChangeReasonModel,
    InvalidOrder,
    ItemModel,
    OrdererModel,
    OrderModel,
)

PLATFORM = "rakuten"
SUBSCRIPTION_ORDER_TYPES = frozenset({4, 5})
DEFAULT_INTERVAL_DAYS = 30
# changeReasonDetail values that mean the goods came back after delivery.
_RETURN_DETAILS = frozenset({2, 15})
# changeType values of a cancellation (申請, 確定, 完了).
_CANCEL_CHANGE_TYPES = frozenset({0, 1, 2})
_CUSTOMER_REASON = 1
_CHANGE_DETAIL_LABELS = {
    1: "キャンセル",
    2: "受取後の返品",
    3: "長期不在",
    4: "未入金",
    5: "代引受取拒否",
    6: "その他",
    8: "欠品",
    10: "店舗その他",
    13: "発送遅延",
    14: "注意表示",
    15: "返品(破損・品間違い)",
    16: "受取情報入力期限切れ",
}
_RESERVE_DATE = re.compile(r"^[^-]+-(\d{8})-")
_CYCLE = re.compile(
    r"(\d{1,3})\s*(日|週間|週|ヶ月|ケ月|カ月|か月|ヵ月|箇月)\s*(ごと|毎|おき|に1回|に一回)"
)
_CYCLE_WORDS = (("隔週", 14), ("毎週", 7), ("隔月", 60), ("毎月", 30))
_CYCLE_UNIT_DAYS = {"日": 1, "週間": 7, "週": 7}


class MappingError(Exception):
    """An order that validated but cannot become a canonical record; `field` is at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class MappedOrder:
    order: OrderRecord
    customer: CustomerRecord
    subscription: SubscriptionRecord | None
    events: tuple[SubscriptionEventRecord, ...]


def map_page(
    orders: Sequence[OrderModel], invalid: Sequence[InvalidOrder]
) -> tuple[RecordBatch, tuple[RejectedRecord, ...]]:
    """Records of the orders that map, and a `RejectedRecord` (with the field) for each other."""
    rejected = [RejectedRecord("order", bad.order_number, bad.problem) for bad in invalid]
    mapped: list[MappedOrder] = []
    for order in orders:
        try:
            mapped.append(map_order(order))
        except MappingError as exc:
            rejected.append(RejectedRecord("order", order.order_number, str(exc)))
        except ValueError as exc:
            rejected.append(RejectedRecord("order", order.order_number, f"(order): {exc}"))
    batch = RecordBatch(
        customers=tuple(item.customer for item in mapped),
        orders=tuple(item.order for item in mapped),
        subscriptions=tuple(item.subscription for item in mapped if item.subscription),
        subscription_events=tuple(event for item in mapped for event in item.events),
    )
    return batch, tuple(rejected)


def map_order(order: OrderModel) -> MappedOrder:
    """One order with its buyer and subscription; all of it or `MappingError`, never half."""
    updated_at = source_updated_at(order)
    total = order_total(order)
    customer = map_customer(order.orderer, order.order_number, order.order_datetime)
    lines = tuple(_line(item) for item in _items(order))
    status = order_status(order)
    subscription_id = _subscription_id(order)
    record = OrderRecord(
        platform=PLATFORM,
        external_id=order.order_number,
        customer_external_id=customer.external_id,
        ordered_at=order.order_datetime,
        total_amount=total,
        currency="JPY",
        status=status,
        lines=lines,
        subscription_external_id=subscription_id,
        source_updated_at=updated_at,
    )
    subscription = None
    events: tuple[SubscriptionEventRecord, ...] = ()
    if subscription_id is not None:
        subscription = _subscription(order, subscription_id, customer.external_id, lines)
        events = _subscription_events(order, subscription_id, status, updated_at)
    return MappedOrder(record, customer, subscription, events)


def order_status(order: OrderModel) -> OrderStatus:
    progress = order.order_progress
    if progress == 900:
        returned = any(
            change.change_reason_detail in _RETURN_DETAILS for change in order.change_reasons
        )
        return OrderStatus.REFUNDED if returned else OrderStatus.CANCELLED
    if progress in (500, 600, 700):
        return OrderStatus.FULFILLED
    return OrderStatus.OPEN


def _known(field: str, value: int | None) -> int:
    """A fee as a number: unknown (`-9999`) or absent counts 0; other negatives are wrong."""
    if value is None or value == UNKNOWN_AMOUNT:
        return 0
    if value < 0:
        raise MappingError(field, f"negative amount {value}")
    return value


def order_total(order: OrderModel) -> int:
    """The RMS 総合計 in yen, unknown fees as 0 (see the module docstring)."""
    if order.goods_price == UNKNOWN_AMOUNT:
        raise MappingError("goodsPrice", "unknown (-9999): the order has no usable total")
    goods = _known("goodsPrice", order.goods_price)
    fees = (
        _known("postagePrice", order.postage_price)
        + _known("deliveryPrice", order.delivery_price)
        + _known("paymentCharge", order.payment_charge)
        + _known("additionalFeeOccurAmountToUser", order.additional_fee_occur_amount_to_user)
    )
    coupons = _known("couponAllTotalPrice", order.coupon_all_total_price)
    # A coupon larger than the order leaves nothing to pay, not a negative sale.
    return max(goods + fees - coupons, 0)


def source_updated_at(order: OrderModel) -> datetime:
    stamps: list[datetime] = [
        stamp
        for stamp in (
            order.order_datetime,
            order.shop_order_cfm_datetime,
            order.order_fix_datetime,
            order.shipping_inst_datetime,
            order.shipping_cmpl_rpt_datetime,
        )
        if stamp is not None
    ]
    for change in order.change_reasons:
        stamps.extend(_change_times(change))
    return max(stamp.astimezone(UTC) for stamp in stamps)


def _change_times(change: ChangeReasonModel) -> Iterable[datetime]:
    for stamp in (
        change.change_apply_datetime,
        change.change_fix_datetime,
        change.change_cmpl_datetime,
    ):
        if stamp is not None:
            yield stamp


def _items(order: OrderModel) -> Iterable[ItemModel]:
    for package in order.packages:
        for item in package.item_model_list:
            if item.delete_item_flag != 1:
                yield item


def _line(item: ItemModel) -> OrderLineRecord:
    if item.price == UNKNOWN_AMOUNT or item.price < 0:
        raise MappingError(
            "PackageModelList.ItemModelList.price", f"unusable unit price {item.price}"
        )
    sku = _sku(item)
    product = (
        item.manage_number or item.item_number or (str(item.item_id) if item.item_id else None)
    )
    return OrderLineRecord(
        quantity=item.units,
        amount=item.price * item.units,
        unit_price=item.price,
        sku=sku,
        title=item.item_name,
        product_external_id=product,
    )


def _sku(item: ItemModel) -> str | None:
    for sku in item.sku_model_list:
        if sku.merchant_defined_sku_id:
            return sku.merchant_defined_sku_id
    for sku in item.sku_model_list:
        if item.manage_number and sku.variant_id:
            return f"{item.manage_number}:{sku.variant_id}"
    return item.item_number or item.manage_number


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def normalised_name(orderer: OrdererModel) -> str:
    name = unicodedata.normalize("NFKC", f"{orderer.family_name}{orderer.first_name}")
    return "".join(name.split()).casefold()


def orderer_phone(orderer: OrdererModel) -> str | None:
    parts = [
        part.strip()
        for part in (orderer.phone_number1, orderer.phone_number2, orderer.phone_number3)
        if part and part.strip()
    ]
    return "-".join(parts) or None


def customer_external_id(orderer: OrdererModel, order_number: str) -> str:
    """The buyer's key: phone + name, else masked email, else the order (module docstring)."""
    phone = e164(orderer_phone(orderer))
    name = normalised_name(orderer)
    if phone and name:
        return f"tel:{_digest(f'{phone}|{name}')}"
    email = unicodedata.normalize("NFKC", orderer.email_address or "").strip().casefold()
    if email:
        return f"mail:{_digest(email)}"
    return f"order:{order_number}"


def map_customer(orderer: OrdererModel, order_number: str, ordered_at: datetime) -> CustomerRecord:
    display_name = " ".join(
        part.strip() for part in (orderer.family_name, orderer.first_name) if part.strip()
    )
    return CustomerRecord(
        platform=PLATFORM,
        external_id=customer_external_id(orderer, order_number),
        display_name=display_name,
        email=orderer.email_address or None,
        phone=orderer_phone(orderer),
        birth_date=_birth_date(orderer),
        # The buyer's details as of this order: a later order's details win, an earlier
        # order re-read by the trailing re-scan never overwrites them.
        source_updated_at=ordered_at,
    )


def _birth_date(orderer: OrdererModel) -> date | None:
    if not (orderer.birth_year and orderer.birth_month and orderer.birth_day):
        return None
    try:
        return date(orderer.birth_year, orderer.birth_month, orderer.birth_day)
    except ValueError:
        return None


def _subscription_id(order: OrderModel) -> str | None:
    if order.order_type not in SUBSCRIPTION_ORDER_TYPES:
        return None
    reserve = (order.reserve_number or "").strip()
    return reserve or None


def interval_days(order: OrderModel) -> int | None:
    """The delivery cycle the buyer chose, when the item options spell it out."""
    for item in _items(order):
        text = unicodedata.normalize("NFKC", f"{item.selected_choice or ''} {item.item_name}")
        found = _CYCLE.search(text)
        if found:
            count, unit = int(found.group(1)), found.group(2)
            days = count * _CYCLE_UNIT_DAYS.get(unit, 30)
            if days > 0:
                return days
        for word, days in _CYCLE_WORDS:
            if word in text:
                return days
    return None


def _application_date(reserve_number: str) -> datetime | None:
    found = _RESERVE_DATE.match(reserve_number)
    if not found:
        return None
    try:
        day = datetime.strptime(found.group(1), "%Y%m%d").replace(tzinfo=JST)
    except ValueError:
        return None
    return day


def _subscription(
    order: OrderModel,
    subscription_id: str,
    customer_id: str,
    lines: Sequence[OrderLineRecord],
) -> SubscriptionRecord:
    interval = interval_days(order) or DEFAULT_INTERVAL_DAYS
    started = _application_date(subscription_id)
    if started is None:
        # Without a date in the reserve number, count back from this delivery so every
        # delivery of the subscription gives the same start.
        count = max((order.reserve_delivery_count or 1) - 1, 0)
        started = order.order_datetime - timedelta(days=interval * count)
    return SubscriptionRecord(
        platform=PLATFORM,
        external_id=subscription_id,
        customer_external_id=customer_id,
        started_at=started,
        status=SubscriptionStatus.ACTIVE,
        interval_days=interval,
        product_title=lines[0].title if lines else "",
        # The delivery order time orders versions: the latest delivery describes it best.
        source_updated_at=order.order_datetime,
    )


def _subscription_events(
    order: OrderModel, subscription_id: str, status: OrderStatus, updated_at: datetime
) -> tuple[SubscriptionEventRecord, ...]:
    events: list[SubscriptionEventRecord] = []
    delivery = order.reserve_delivery_count
    if delivery == 1 and status not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        events.append(
            SubscriptionEventRecord(
                platform=PLATFORM,
                subscription_external_id=subscription_id,
                kind=SubscriptionEventKind.STARTED,
                occurred_at=order.order_datetime,
                event_id=f"{subscription_id}:started",
            )
        )
    if status == OrderStatus.CANCELLED:
        cancel = _customer_cancellation(order)
        if cancel is not None:
            at = cancel.change_fix_datetime or cancel.change_cmpl_datetime
            at = at or cancel.change_apply_datetime or updated_at
            label = _CHANGE_DETAIL_LABELS.get(cancel.change_reason_detail or 0, "お客様都合")
            which = f"delivery {delivery}" if delivery else "a delivery"
            events.append(
                SubscriptionEventRecord(
                    platform=PLATFORM,
                    subscription_external_id=subscription_id,
                    kind=SubscriptionEventKind.SKIPPED,
                    occurred_at=at,
                    event_id=f"{order.order_number}:cancelled",
                    reason=f"{which} ({order.order_number}) cancelled by the customer: {label}",
                )
            )
    return tuple(events)


def _customer_cancellation(order: OrderModel) -> ChangeReasonModel | None:
    cancels = [
        change
        for change in order.change_reasons
        if change.change_type in _CANCEL_CHANGE_TYPES and change.change_reason == _CUSTOMER_REASON
    ]
    return cancels[-1] if cancels else None
