"""Shopify payloads to canonical records: the one place Shopify's shapes become Kizuki's.

Decisions:
- External ids are Shopify's GraphQL gids (`gid://shopify/Order/1`); REST webhook bodies are
  mapped to the same gids, so a webhook and a sync update the same rows.
- Amounts are shop-money decimal strings, turned into integer minor units of the shop
  currency (JPY has none, USD two); `totalPriceSet` (after edits, before refunds) is the
  total, `totalRefundedSet` the refunded amount. Line quantities are `currentQuantity`
  (after edits and removals); lines edited down to nothing are dropped. A line's unit price
  is after its own discounts (GraphQL `discountedUnitPriceSet`; REST `price` less the line's
  `discount_allocations`), so a webhook and a sync give the same line.
- Status: `cancelledAt` set → cancelled; REFUNDED → refunded; VOIDED → cancelled (nothing was
  ever captured); FULFILLED → fulfilled; anything else → open. Test orders are left out.
- Guest orders (customer null) belong to a synthetic customer keyed by the order's email:
  `guest:<sha256 of the normalised email>`, else its phone: `guest-phone:<sha256 of E.164>`,
  so repeat guest purchases build one history and ingest can merge it with an account by email.
  A guest order with neither (also what protected-data redaction leaves) is rejected: it
  cannot be attributed to anyone, and a customer per order would fake first-time buyers.
- Protected customer data may be redacted (null email, phone, names): the customer is kept
  with its id and no contact data.
- Subscription contracts: ACTIVE/PAUSED as such; CANCELLED, EXPIRED, FAILED, STALE →
  cancelled (the reason keeps which). Events carry stable ids so a replayed page or a
  webhook of the same fact dedupes: `<gid>:started`, `<gid>:skip:<cycleIndex>`,
  `<gid>:unskip:<cycleIndex>:<webhook id>`, `<gid>:resumed:<webhook id>`,
  `<gid>:paused@<updatedAt>`, `<gid>:cancelled`. Orders carry no contract link (an order
  node names no contract), so `subscription_external_id` stays None.
- Contract webhooks carry no version of the contract (an `updated_at`, where a payload has
  one, only dates its status event): their subscription has no `source_updated_at`. Ingest
  lets such a record create a missing row or overwrite one no sync has versioned yet, never
  a sync's. Between webhooks alone the last contract webhook processed therefore sets the
  status, whatever order the changes happened in (a `…/create` processed after the
  `…/pause` leaves the contract active), and the row lacks what only a sync reads (product
  title, next delivery). Each contract webhook asks for a sync (`webhooks.py`), whose
  contract, versioned by `updatedAt`, replaces the row: once a sync has read the contract
  after the last contract webhook was processed, the subscription is the same whatever the
  delivery order. Events dedupe by the ids above in any order.
  The topic says which event happened (`…/create` started, `…/activate` resumed; pause,
  cancel, expire and fail stand for the contract's new status; `…/update` for none).
"""

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import msgspec
from pydantic import ValidationError

from domain.ingest.contact import e164, normalise_email
from domain.order.models import OrderStatus
from domain.platforms import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    Platform,
    PrivacyAction,
    PrivacyRequest,
    RecordBatch,
    RejectedRecord,
    SubscriptionEventRecord,
    SubscriptionRecord,
)
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus
from integrations.shopify import wire

PLATFORM = Platform.SHOPIFY.value

# ISO 4217 minor-unit exponents that differ from 2.
_EXPONENTS = {
    **dict.fromkeys(("JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG"), 0),
    **dict.fromkeys(("BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD"), 3),
}
_INTERVAL_DAYS = {"DAY": 1, "WEEK": 7, "MONTH": 30, "YEAR": 365}
_CONTRACT_STATUS = {
    "ACTIVE": SubscriptionStatus.ACTIVE,
    "PAUSED": SubscriptionStatus.PAUSED,
    "CANCELLED": SubscriptionStatus.CANCELLED,
    "EXPIRED": SubscriptionStatus.CANCELLED,
    "FAILED": SubscriptionStatus.CANCELLED,
    "STALE": SubscriptionStatus.CANCELLED,
}


class Unmappable(ValueError):
    """A payload that validated but cannot become a canonical record."""


@dataclass(frozen=True, slots=True)
class MappedOrder:
    order: OrderRecord
    customer: CustomerRecord | None


@dataclass(frozen=True, slots=True)
class MappedContract:
    subscription: SubscriptionRecord
    customer: CustomerRecord
    events: tuple[SubscriptionEventRecord, ...]


def gid(kind: str, numeric_id: int) -> str:
    return f"gid://shopify/{kind}/{numeric_id}"


_ONE = Decimal(1)


# A shop's prices repeat from order to order: a backfill converts the same few hundred
# amounts again and again.
@functools.lru_cache(maxsize=4096)
def minor_units(amount: Decimal, currency: str) -> int:
    """A decimal amount of `currency` in its minor unit, rounded half up."""
    exponent = _EXPONENTS.get(currency.upper(), 2)
    return int((amount.scaleb(exponent)).quantize(_ONE, rounding=ROUND_HALF_UP))


def guest_customer_id(email: str | None, phone: str | None) -> str | None:
    """The synthetic external id of a guest buyer, None when nothing identifies them."""
    normalised = normalise_email(email)
    if normalised is not None:
        return "guest:" + hashlib.sha256(normalised.address.encode()).hexdigest()
    number = e164(phone)
    if number is not None:
        return "guest-phone:" + hashlib.sha256(number.encode()).hexdigest()
    return None


def validation_problem(error: ValidationError) -> str:
    """Each bad field of a payload by its path, e.g. `totalPriceSet.shopMoney.amount: …`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '<root>'}: {item['msg']}"
        for item in error.errors()
    )


def _raw_id(raw: wire.JSONObject) -> str | None:
    value = raw.get("id")
    return value if isinstance(value, str) and value else None


def _name(first: str | None, last: str | None, display: str | None = None) -> str:
    # Japanese order: family name first.
    joined = " ".join(part for part in (last, first) if part)
    return joined or display or ""


def _status(cancelled: bool, financial: str | None, fulfillment: str | None) -> OrderStatus:
    financial = (financial or "").upper()
    if cancelled or financial == "VOIDED":
        return OrderStatus.CANCELLED
    if financial == "REFUNDED":
        return OrderStatus.REFUNDED
    if (fulfillment or "").upper() == "FULFILLED":
        return OrderStatus.FULFILLED
    return OrderStatus.OPEN


def _order(
    *,
    external_id: str,
    customer_external_id: str,
    ordered_at: datetime,
    updated_at: datetime,
    total: int,
    refunded: int,
    currency: str,
    status: OrderStatus,
    lines: Sequence[OrderLineRecord],
) -> OrderRecord:
    return OrderRecord(
        platform=PLATFORM,
        external_id=external_id,
        customer_external_id=customer_external_id,
        ordered_at=ordered_at,
        total_amount=total,
        currency=currency,
        status=status,
        refunded_amount=min(refunded, total),
        lines=tuple(lines),
        source_updated_at=updated_at,
    )


def _buyer(
    customer: CustomerRecord | None,
    email: str | None,
    phone: str | None,
    created_at: datetime,
    updated_at: datetime,
) -> CustomerRecord:
    if customer is not None:
        return customer
    external_id = guest_customer_id(email, phone)
    if external_id is None:
        raise Unmappable("guest order without email or phone: cannot attribute it to a customer")
    return CustomerRecord(
        platform=PLATFORM,
        external_id=external_id,
        email=email,
        phone=phone,
        created_at=created_at,
        source_updated_at=updated_at,
    )


def customer_record(customer: wire.Customer) -> CustomerRecord:
    return CustomerRecord(
        platform=PLATFORM,
        external_id=customer.id,
        display_name=_name(customer.first_name, customer.last_name, customer.display_name),
        email=customer.email,
        phone=customer.phone,
        created_at=customer.created_at,
        source_updated_at=customer.updated_at,
    )


def order_from_node(raw: wire.JSONObject) -> MappedOrder | RejectedRecord | None:
    """One GraphQL order node: its records, a rejection saying which field is bad, or None
    for a test order."""
    try:
        node = wire.node(raw, wire.Order)
    except msgspec.ValidationError as error:
        return RejectedRecord("order", _raw_id(raw), wire.problem(error))
    if node.test:
        return None
    try:
        currency = node.total_price_set.shop_money.currency_code
        lines = [
            OrderLineRecord(
                quantity=line.current_quantity,
                amount=minor_units(price.amount * line.current_quantity, currency),
                unit_price=minor_units(price.amount, currency),
                sku=line.sku or None,
                title=line.name,
                product_external_id=line.product.id if line.product else None,
            )
            for line in node.line_items.nodes
            if line.current_quantity > 0
            for price in [
                (line.discounted_unit_price_set or line.original_unit_price_set).shop_money
            ]
        ]
        customer = customer_record(node.customer) if node.customer else None
        buyer = _buyer(customer, node.email, node.phone, node.created_at, node.updated_at)
        order = _order(
            external_id=node.id,
            customer_external_id=buyer.external_id,
            ordered_at=node.processed_at or node.created_at,
            updated_at=node.updated_at,
            total=minor_units(node.total_price_set.shop_money.amount, currency),
            refunded=(
                minor_units(node.total_refunded_set.shop_money.amount, currency)
                if node.total_refunded_set
                else 0
            ),
            currency=currency,
            status=_status(
                node.cancelled_at is not None,
                node.display_financial_status,
                node.display_fulfillment_status,
            ),
            lines=lines,
        )
    except ValueError as error:
        return RejectedRecord("order", node.id, str(error))
    return MappedOrder(order, buyer)


def order_from_rest(payload: wire.RestOrder) -> MappedOrder | None:
    """A REST-shaped order (webhook body); None for a test order. Raises `Unmappable`."""
    if payload.test:
        return None
    if payload.total_price_set is not None:
        currency = payload.total_price_set.shop_money.currency_code
        total = payload.total_price_set.shop_money.amount
    else:
        currency, total = payload.currency, payload.total_price
    refunded = sum(
        (
            transaction.amount
            for refund in payload.refunds
            for transaction in refund.transactions
            if transaction.kind == "refund" and transaction.status == "success"
        ),
        Decimal(0),
    )
    try:
        lines = [
            OrderLineRecord(
                quantity=quantity,
                amount=minor_units(line.discounted_price * quantity, currency),
                unit_price=minor_units(line.discounted_price, currency),
                sku=line.sku or None,
                title=line.name,
                product_external_id=gid("Product", line.product_id) if line.product_id else None,
            )
            for line in payload.line_items
            for quantity in [
                line.quantity if line.current_quantity is None else line.current_quantity
            ]
            if quantity > 0
        ]
        customer = customer_from_rest(payload.customer) if payload.customer else None
        updated_at = payload.updated_at
        buyer = _buyer(customer, payload.email, payload.phone, payload.created_at, updated_at)
        order = _order(
            external_id=payload.admin_graphql_api_id or gid("Order", payload.id),
            customer_external_id=buyer.external_id,
            ordered_at=payload.processed_at or payload.created_at,
            updated_at=updated_at,
            total=minor_units(total, currency),
            refunded=minor_units(refunded, currency),
            currency=currency,
            status=_status(
                payload.cancelled_at is not None,
                payload.financial_status,
                payload.fulfillment_status,
            ),
            lines=lines,
        )
    except ValueError as error:
        raise Unmappable(str(error)) from error
    return MappedOrder(order, buyer)


def customer_from_rest(payload: wire.RestCustomer) -> CustomerRecord:
    return CustomerRecord(
        platform=PLATFORM,
        external_id=payload.admin_graphql_api_id or gid("Customer", payload.id),
        display_name=_name(payload.first_name, payload.last_name),
        email=payload.email,
        phone=payload.phone,
        created_at=payload.created_at,
        source_updated_at=payload.updated_at,
    )


def contract_status(status: str) -> SubscriptionStatus:
    try:
        return _CONTRACT_STATUS[status.upper()]
    except KeyError:
        raise Unmappable(f"status: unknown subscription contract status {status!r}") from None


def interval_days(interval: str, count: int) -> int:
    try:
        return _INTERVAL_DAYS[interval.upper()] * count
    except KeyError:
        raise Unmappable(f"billingPolicy.interval: unknown interval {interval!r}") from None


def _event(
    contract_id: str, kind: SubscriptionEventKind, at: datetime, key: str, reason: str | None
) -> SubscriptionEventRecord:
    return SubscriptionEventRecord(
        platform=PLATFORM,
        subscription_external_id=contract_id,
        kind=kind,
        occurred_at=at,
        event_id=f"{contract_id}:{key}",
        reason=reason,
    )


def status_event(contract_id: str, status: str, at: datetime) -> SubscriptionEventRecord | None:
    """The event a contract's current status stands for (paused or ended), with a stable id."""
    match status.upper():
        case "PAUSED":
            return _event(
                contract_id,
                SubscriptionEventKind.PAUSED,
                at,
                f"paused@{at.astimezone(UTC).isoformat()}",
                None,
            )
        case "CANCELLED" | "EXPIRED" | "FAILED" | "STALE":
            return _event(
                contract_id, SubscriptionEventKind.CANCELLED, at, "cancelled", status.lower()
            )
    return None


def skip_event(contract_id: str, cycle_index: int, at: datetime) -> SubscriptionEventRecord:
    return _event(contract_id, SubscriptionEventKind.SKIPPED, at, f"skip:{cycle_index}", None)


def unskip_event(
    contract_id: str, cycle_index: int, at: datetime, delivery_id: str
) -> SubscriptionEventRecord:
    """A skip taken back; keyed by the delivery too, since a cycle may be skipped again later."""
    key = f"unskip:{cycle_index}:{delivery_id}"
    return _event(contract_id, SubscriptionEventKind.UNSKIPPED, at, key, None)


def started_event(contract_id: str, at: datetime) -> SubscriptionEventRecord:
    return _event(contract_id, SubscriptionEventKind.STARTED, at, "started", None)


def contract_from_rest(
    topic: str, payload: wire.RestContract, at: datetime, delivery_id: str
) -> RecordBatch:
    """A `subscription_contracts/*` webhook body: the contract (started at `at`) and the event
    its topic stands for. Raises `Unmappable`."""
    contract_id = payload.admin_graphql_api_id or gid("SubscriptionContract", payload.id)
    policy = payload.billing_policy
    subscription = SubscriptionRecord(
        platform=PLATFORM,
        external_id=contract_id,
        customer_external_id=payload.admin_graphql_api_customer_id
        or gid("Customer", payload.customer_id),
        started_at=at,
        status=contract_status(payload.status),
        interval_days=interval_days(policy.interval, policy.interval_count) if policy else 30,
    )
    match topic.rpartition("/")[2]:
        case "create":
            found: SubscriptionEventRecord | None = started_event(contract_id, at)
        case "activate":
            kind = SubscriptionEventKind.RESUMED
            found = _event(contract_id, kind, at, f"resumed:{delivery_id}", None)
        case "pause" | "cancel" | "expire" | "fail":
            found = status_event(contract_id, payload.status, payload.updated_at or at)
        case _:
            found = None
    events = (found,) if found is not None else ()
    return RecordBatch(subscriptions=(subscription,), subscription_events=events)


def billing_cycle_event(
    topic: str, payload: wire.RestBillingCycle, occurred_at: datetime | None, delivery_id: str
) -> SubscriptionEventRecord | None:
    """The skip or unskip a `subscription_billing_cycles/*` webhook reports, None for neither."""
    contract_id = payload.admin_graphql_api_subscription_contract_id or gid(
        "SubscriptionContract", payload.subscription_contract_id
    )
    if topic == "subscription_billing_cycles/unskip" and not payload.skipped:
        # The skip stays in history as it happened; the unskip takes it back from the time
        # Shopify says it happened.
        at = occurred_at or payload.billing_attempt_expected_date or payload.cycle_start_at
        return unskip_event(contract_id, payload.cycle_index, at, delivery_id)
    if not payload.skipped:
        return None
    at = payload.billing_attempt_expected_date or payload.cycle_start_at
    return skip_event(contract_id, payload.cycle_index, at)


def privacy_request(action: PrivacyAction, payload: wire.PrivacyPayload) -> PrivacyRequest:
    """A GDPR webhook body as the request to act on, naming customers and orders by gid."""
    customer = payload.customer
    orders = payload.orders_requested or payload.orders_to_redact
    return PrivacyRequest(
        action=action,
        customer_external_ids=(gid("Customer", customer.id),) if customer else (),
        order_external_ids=tuple(gid("Order", order) for order in orders),
        email=customer.email if customer else None,
        phone=customer.phone if customer else None,
        request_id=str(payload.data_request.id) if payload.data_request else None,
    )


def contract_from_node(raw: wire.JSONObject) -> MappedContract | RejectedRecord:
    """One GraphQL subscription contract: the subscription, its customer and its events."""
    try:
        node = wire.node(raw, wire.SubscriptionContract)
    except msgspec.ValidationError as error:
        return RejectedRecord("subscription", _raw_id(raw), wire.problem(error))
    try:
        status = contract_status(node.status)
        ended = status is SubscriptionStatus.CANCELLED
        subscription = SubscriptionRecord(
            platform=PLATFORM,
            external_id=node.id,
            customer_external_id=node.customer.id,
            started_at=node.created_at,
            status=status,
            interval_days=interval_days(
                node.billing_policy.interval, node.billing_policy.interval_count
            ),
            product_title=node.lines.nodes[0].title if node.lines.nodes else "",
            cancelled_at=node.updated_at if ended else None,
            next_delivery_at=None if ended else node.next_billing_date,
            source_updated_at=node.updated_at,
        )
        events = [started_event(node.id, node.created_at)]
        events += [
            skip_event(
                node.id,
                cycle.cycle_index,
                cycle.billing_attempt_expected_date or cycle.cycle_start_at,
            )
            for cycle in node.billing_cycles.nodes
            if cycle.skipped
        ]
        current = status_event(node.id, node.status, node.updated_at)
        if current is not None:
            events.append(current)
    except ValueError as error:
        return RejectedRecord("subscription", node.id, str(error))
    return MappedContract(subscription, customer_record(node.customer), tuple(events))
