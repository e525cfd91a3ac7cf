"""SP-API and LWA payloads as Amazon sends them (Orders API v0, Sellers API, ORDER_CHANGE).

Lists of orders and order items arrive as raw objects and are validated one by one, so one
malformed order is rejected on its own while the rest of the page goes on. Field names keep
Amazon's spelling; everything not needed here is ignored.
"""

from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError

__all__ = ["ValidationError", "field_problem"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class AmazonOrderStatus(StrEnum):
    PENDING_AVAILABILITY = "PendingAvailability"
    PENDING = "Pending"
    UNSHIPPED = "Unshipped"
    PARTIALLY_SHIPPED = "PartiallyShipped"
    SHIPPED = "Shipped"
    INVOICE_UNCONFIRMED = "InvoiceUnconfirmed"
    CANCELED = "Canceled"
    UNFULFILLABLE = "Unfulfillable"


class Money(_Wire):
    CurrencyCode: str = Field(min_length=3, max_length=3)
    # A decimal string ("3980.00"); NaN and infinities are refused.
    Amount: Decimal


class Buyer(_Wire):
    # Anonymised relay address, stable per buyer and seller; absent without the role or RDT.
    BuyerEmail: str | None = None


class Order(_Wire):
    AmazonOrderId: str = Field(min_length=1, max_length=200)
    PurchaseDate: AwareDatetime
    LastUpdateDate: AwareDatetime
    OrderStatus: AmazonOrderStatus
    OrderTotal: Money | None = None
    MarketplaceId: str | None = None
    FulfillmentChannel: str | None = None
    IsReplacementOrder: bool = False
    BuyerInfo: Buyer | None = None


class Programs(_Wire):
    Programs: list[str] = []


class OrderItem(_Wire):
    ASIN: str = Field(min_length=1)
    OrderItemId: str = Field(min_length=1)
    QuantityOrdered: int = Field(ge=0)
    SellerSKU: str | None = None
    Title: str | None = None
    ItemPrice: Money | None = None
    PromotionDiscount: Money | None = None
    AmazonPrograms: Programs | None = None


class OrdersPayload(_Wire):
    Orders: list[JsonValue]
    NextToken: str | None = None
    LastUpdatedBefore: str | None = None


class OrdersResponse(_Wire):
    payload: OrdersPayload


class OrderResponse(_Wire):
    payload: JsonValue


class OrderItemsPayload(_Wire):
    AmazonOrderId: str | None = None
    OrderItems: list[JsonValue]
    NextToken: str | None = None


class OrderItemsResponse(_Wire):
    payload: OrderItemsPayload


class ApiError(_Wire):
    code: str = ""
    message: str = ""
    details: str | None = None


class ErrorResponse(_Wire):
    errors: list[ApiError] = []


class LwaToken(_Wire):
    access_token: str = Field(min_length=1)
    expires_in: int = Field(gt=0)
    token_type: str = "bearer"


class LwaError(_Wire):
    error: str = ""
    error_description: str = ""


class Marketplace(_Wire):
    id: str
    name: str = ""
    country_code: str = Field("", alias="countryCode")


class Participation(_Wire):
    is_participating: bool = Field(True, alias="isParticipating")


class MarketplaceParticipation(_Wire):
    marketplace: Marketplace
    participation: Participation = Participation()
    store_name: str = Field("", alias="storeName")


class MarketplaceParticipationsResponse(_Wire):
    payload: list[MarketplaceParticipation]


class ChangeTrigger(_Wire):
    TimeOfOrderChange: AwareDatetime | None = None
    ChangeReason: str | None = None


class OrderChange(_Wire):
    SellerId: str
    AmazonOrderId: str
    OrderChangeType: str | None = None
    OrderChangeTrigger: ChangeTrigger | None = None


class OrderChangePayload(_Wire):
    OrderChangeNotification: OrderChange


class Metadata(_Wire):
    NotificationId: str = Field(min_length=1, max_length=200)
    PublishTime: AwareDatetime | None = None
    SubscriptionId: str | None = None


class Notification(_Wire):
    NotificationType: str
    EventTime: AwareDatetime | None = None
    Payload: OrderChangePayload
    NotificationMetadata: Metadata


def field_problem(error: ValidationError, prefix: str = "") -> str:
    """The first validation failure as `Field.Path[2].Leaf: message`."""
    first = error.errors()[0]
    path = prefix
    for part in first["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return f"{path or '(body)'}: {first['msg']}"
