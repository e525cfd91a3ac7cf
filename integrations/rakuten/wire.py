"""Rakuten RMS payloads as pydantic models: RakutenPay Order API JSON and notification XML.

Field names follow the vendor's spelling through aliases (`orderNumber`, `OrdererModel`).
Orders are validated one at a time (`parse_get_order`), so one malformed order is reported
with the field at fault while the others of the response go on.
"""

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic.alias_generators import to_camel

JST = timezone(timedelta(hours=9), "JST")
# Rakuten spells the offset without a colon and refuses any other form in searchOrder.
RMS_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S+0900"
# An amount Rakuten does not know yet (送料・代引料 未確定).
UNKNOWN_AMOUNT = -9999
ORDER_PROGRESS_VALUES = frozenset({100, 200, 300, 400, 500, 600, 700, 800, 900})


def format_rms_datetime(value: datetime) -> str:
    """An aware datetime as searchOrder wants it: JST, `yyyy-MM-ddTHH:mm:ss+0900`."""
    if value.tzinfo is None:
        raise ValueError("Rakuten datetimes must be built from aware datetimes")
    return value.astimezone(JST).strftime(RMS_DATETIME_FORMAT)


def parse_rms_datetime(raw: str) -> datetime:
    """`2024-05-01T10:15:00+0900` (or `+09:00`) as an aware datetime; naive ones are refused."""
    try:
        parsed = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(f"datetime without an offset: {raw!r}")
    return parsed


def _rms_datetime(value: object) -> object:
    if isinstance(value, str):
        return parse_rms_datetime(value.strip())
    return value


def _list_or_empty(value: object) -> object:
    # Rakuten sends `null` for empty lists in places.
    return [] if value is None else value


def _progress(value: int) -> int:
    if value not in ORDER_PROGRESS_VALUES:
        raise ValueError(f"unknown orderProgress {value}")
    return value


RmsDatetime = Annotated[datetime, BeforeValidator(_rms_datetime)]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class MessageModel(_Model):
    message_type: str = ""
    message_code: str = ""
    message: str = ""
    order_number: str | None = None


class PaginationResponse(_Model):
    total_records_amount: int | None = None
    total_pages: int | None = None
    request_page: int | None = None


class SearchOrderResponse(_Model):
    order_number_list: list[str] | None = None
    message_model_list: Annotated[list[MessageModel], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="MessageModelList"
    )
    pagination: PaginationResponse | None = Field(default=None, alias="PaginationResponseModel")


class GatewayResult(_Model):
    error_code: str = ""
    message: str = ""


class GatewayError(_Model):
    """The API gateway's own error shape (ES01-01 …), not a MessageModelList."""

    results: GatewayResult = Field(alias="Results")


class SkuModel(_Model):
    variant_id: str | None = None
    merchant_defined_sku_id: str | None = None
    sku_info: str | None = None


class ItemModel(_Model):
    item_detail_id: int | None = None
    item_name: str = ""
    item_id: int | None = None
    item_number: str | None = None
    manage_number: str | None = None
    price: int
    units: int = Field(ge=0)
    selected_choice: str | None = None
    delete_item_flag: int = 0
    sku_model_list: Annotated[list[SkuModel], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="SkuModelList"
    )


class PackageModel(_Model):
    basket_id: int | None = None
    item_model_list: Annotated[list[ItemModel], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="ItemModelList"
    )


class OrdererModel(_Model):
    family_name: str = ""
    first_name: str = ""
    family_name_kana: str | None = None
    first_name_kana: str | None = None
    phone_number1: str | None = None
    phone_number2: str | None = None
    phone_number3: str | None = None
    email_address: str | None = None
    zip_code1: str | None = None
    zip_code2: str | None = None
    birth_year: int | None = None
    birth_month: int | None = None
    birth_day: int | None = None


class ChangeReasonModel(_Model):
    change_id: int | None = None
    change_type: int | None = None
    change_type_detail: int | None = None
    change_reason: int | None = None
    change_reason_detail: int | None = None
    change_apply_datetime: RmsDatetime | None = None
    change_fix_datetime: RmsDatetime | None = None
    change_cmpl_datetime: RmsDatetime | None = None


class OrderModel(_Model):
    order_number: str = Field(min_length=1, max_length=200)
    order_progress: Annotated[int, AfterValidator(_progress)]
    order_type: int = 1
    order_datetime: RmsDatetime
    shop_order_cfm_datetime: RmsDatetime | None = None
    order_fix_datetime: RmsDatetime | None = None
    shipping_inst_datetime: RmsDatetime | None = None
    shipping_cmpl_rpt_datetime: RmsDatetime | None = None
    reserve_number: str | None = None
    reserve_delivery_count: int | None = None
    goods_price: int
    postage_price: int | None = None
    delivery_price: int | None = None
    payment_charge: int | None = None
    total_price: int | None = None
    request_price: int | None = None
    coupon_all_total_price: int | None = None
    additional_fee_occur_amount_to_user: int | None = None
    orderer: OrdererModel = Field(alias="OrdererModel")
    packages: Annotated[list[PackageModel], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="PackageModelList"
    )
    change_reasons: Annotated[list[ChangeReasonModel], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="ChangeReasonModelList"
    )


class _GetOrderEnvelope(_Model):
    message_model_list: Annotated[list[MessageModel], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="MessageModelList"
    )
    order_model_list: Annotated[list[Any], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="OrderModelList"
    )


@dataclass(frozen=True, slots=True)
class InvalidOrder:
    """An order of a getOrder response that failed validation: which order, which field."""

    order_number: str | None
    problem: str


@dataclass(frozen=True, slots=True)
class GetOrderResult:
    orders: tuple[OrderModel, ...]
    invalid: tuple[InvalidOrder, ...]
    messages: tuple[MessageModel, ...]


def describe_validation_error(error: ValidationError, *, limit: int = 3) -> str:
    """`PackageModelList.0.ItemModelList.1.units: Input should be …`, for the first few errors."""
    parts = []
    for detail in error.errors()[:limit]:
        location = ".".join(str(part) for part in detail["loc"]) or "(order)"
        parts.append(f"{location}: {detail['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def parse_search_order(body: bytes) -> SearchOrderResponse:
    """A searchOrder response; raises `ValueError` when it is not one."""
    return SearchOrderResponse.model_validate_json(body)


def parse_gateway_error(body: bytes) -> GatewayError | None:
    try:
        return GatewayError.model_validate_json(body)
    except ValidationError:
        return None


def parse_get_order(body: bytes) -> GetOrderResult:
    """A getOrder response, each order validated on its own; raises `ValueError` if no envelope."""
    envelope = _GetOrderEnvelope.model_validate_json(body)
    orders: list[OrderModel] = []
    invalid: list[InvalidOrder] = []
    for raw in envelope.order_model_list:
        number = raw.get("orderNumber") if isinstance(raw, dict) else None
        try:
            orders.append(OrderModel.model_validate(raw))
        except ValidationError as exc:
            invalid.append(
                InvalidOrder(
                    order_number=number if isinstance(number, str) and number else None,
                    problem=describe_validation_error(exc),
                )
            )
    return GetOrderResult(tuple(orders), tuple(invalid), tuple(envelope.message_model_list))


def search_order_body(
    *,
    date_type: int,
    start: datetime,
    end: datetime,
    page: int,
    per_page: int,
) -> bytes:
    """The JSON body of a searchOrder request, sorted by order datetime ascending."""
    return json.dumps(
        {
            "dateType": date_type,
            "startDatetime": format_rms_datetime(start),
            "endDatetime": format_rms_datetime(end),
            "PaginationRequestModel": {
                "requestRecordsAmount": per_page,
                "requestPage": page,
                "SortModelList": [{"sortColumn": 1, "sortDirection": 1}],
            },
        }
    ).encode()


def get_order_body(order_numbers: Sequence[str], version: int) -> bytes:
    return json.dumps({"orderNumberList": list(order_numbers), "version": version}).encode()


# ---- System Event Notification (XML) -------------------------------------------------------


class NotificationAuth(_Model):
    contract_id: str | None = None
    shop_url: str | None = None
    auth_key: str | None = None


class NotifiedOrder(_Model):
    order_number: str = Field(min_length=1)
    seq_id: str | None = None
    order_date: str | None = None
    order_type: str | None = None


class Notification(_Model):
    """An `orderNotifyModel` or a `notifyModel`; both reduce to order numbers to re-read."""

    root: str
    auth: NotificationAuth
    orders: tuple[NotifiedOrder, ...] = ()
    request_ids: tuple[str, ...] = ()


def _text(element: ET.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def parse_notification_xml(body: bytes) -> Notification:
    """The notification in `body`; raises `ValueError` for anything else (DTDs refused)."""
    head = body[:2048].lower()
    if b"<!doctype" in head or b"<!entity" in body.lower():
        raise ValueError("notifications must not carry a DTD")
    try:
        # DTDs are refused above, so no entity can expand.
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc
    if root.tag not in ("orderNotifyModel", "notifyModel"):
        raise ValueError(f"unknown notification root <{root.tag}>")
    auth_element = root.find("authModel")
    auth = NotificationAuth(
        contract_id=_text(auth_element.find("contractId")) if auth_element is not None else None,
        shop_url=_text(auth_element.find("shopUrl")) if auth_element is not None else None,
        auth_key=_text(auth_element.find("authKey")) if auth_element is not None else None,
    )
    orders: list[NotifiedOrder] = []
    request_ids: list[str] = []
    if root.tag == "orderNotifyModel":
        for info in root.iter("orderInfoNotifyModel"):
            orders.append(
                NotifiedOrder(
                    order_number=_text(info.find("orderNumber")) or "",
                    seq_id=_text(info.find("seqId")),
                    order_date=_text(info.find("orderDate")),
                    order_type=_text(info.find("orderType")),
                )
            )
    else:
        for info in root.iter("notifyInfoModel"):
            request_id = _text(info.find("requestId"))
            if request_id:
                request_ids.append(request_id)
            for index in range(1, 11):
                value = info.find(f"value{index}")
                if value is not None and value.get("name") == "orderNumber" and _text(value):
                    orders.append(NotifiedOrder(order_number=_text(value) or ""))
    return Notification(
        root=root.tag, auth=auth, orders=tuple(orders), request_ids=tuple(request_ids)
    )
