"""Imports every area's tables so `SQLModel.metadata` is complete (for alembic and tests)."""

from sqlmodel import SQLModel

from domain.audit.models import AuditLog
from domain.campaign.models import Campaign, CampaignStep, Enrollment
from domain.connection.models import Connection, SyncRun, WebhookInbox
from domain.consent.models import Consent
from domain.customer.models import Customer, CustomerIdentity
from domain.message.models import Message, MessageEvent, Task
from domain.order.models import Order, OrderLine, Product
from domain.risk.models import RiskScore, RiskScoreHistory
from domain.segment.models import Segment
from domain.shop.models import ApiKey, Shop
from domain.subscription.models import Subscription, SubscriptionEvent

metadata = SQLModel.metadata

__all__ = [
    "ApiKey",
    "AuditLog",
    "Campaign",
    "CampaignStep",
    "Connection",
    "Consent",
    "Customer",
    "CustomerIdentity",
    "Enrollment",
    "Message",
    "MessageEvent",
    "Order",
    "OrderLine",
    "Product",
    "RiskScore",
    "RiskScoreHistory",
    "Segment",
    "Shop",
    "Subscription",
    "SubscriptionEvent",
    "SyncRun",
    "Task",
    "WebhookInbox",
    "metadata",
]
