import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field

from domain.db import JSONValue, TenantChildModel, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class Customer(TenantModel, table=True):
    """A person as the shop knows them; order aggregates are kept current by ingest."""

    __table_args__ = (
        # Listing sorts end with the id, their tie-breaker: a page starts at its cursor even
        # among many equal values (most customers have one order).
        Index("ix_customer_created", "shop_id", "created_at", "id"),
        Index("ix_customer_last_order", "shop_id", "last_order_at", "id"),
        Index("ix_customer_total_spent", "shop_id", "total_spent", "id"),
        Index("ix_customer_order_count", "shop_id", "order_count", "id"),
        Index("ix_customer_email", "shop_id", "email"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    birth_date: date | None = None
    # Sourced only from a mall whose terms forbid marketing use (Amazon): never targeted.
    marketing_restricted: bool = False
    first_order_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The product of the first line naming one on the first purchase (earliest by order time,
    # then id): the risk model's first-timer segment. Derived like the other aggregates, so no
    # foreign key: purging a connection deletes its products before recomputing aggregates.
    first_product_id: uuid.UUID | None = None
    last_order_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    order_count: int = 0
    total_spent: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(default="JPY", max_length=3)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CustomerIdentity(TenantChildModel, table=True):
    """A customer as one connection knows them, with the evidence that linked it."""

    __tablename__ = "customer_identity"
    __table_args__ = (
        UniqueConstraint("shop_id", "connection_id", "external_id"),
        ForeignKeyConstraint(["shop_id", "customer_id"], ["customer.shop_id", "customer.id"]),
        ForeignKeyConstraint(["shop_id", "connection_id"], ["connection.shop_id", "connection.id"]),
        Index("ix_identity_customer", "shop_id", "customer_id"),
        Index("ix_identity_email_hash", "shop_id", "email_hash"),
        Index("ix_identity_phone_hash", "shop_id", "phone_hash"),
        Index("ix_identity_external", "shop_id", "external_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID
    connection_id: uuid.UUID
    platform: str = Field(max_length=32)
    external_id: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    # SHA-256 of the normalised email / phone; masked relay addresses get no hash.
    email_hash: str | None = Field(default=None, max_length=64)
    phone_hash: str | None = Field(default=None, max_length=64)
    email_masked: bool = False
    merge_evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    source_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CustomerMerge(TenantModel, table=True):
    """One customer absorbed into another, with what moved, so an unmerge restores both exactly.

    `snapshot` holds the absorbed customer's own fields as they were; the identities, orders
    and subscriptions that moved are found again through their `identity_id`.
    """

    __tablename__ = "customer_merge"
    __table_args__ = (
        ForeignKeyConstraint(["shop_id", "survivor_id"], ["customer.shop_id", "customer.id"]),
        Index("ix_customer_merge_survivor", "shop_id", "survivor_id"),
        Index("ix_customer_merge_absorbed", "shop_id", "absorbed_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    survivor_id: uuid.UUID
    # No foreign key: the absorbed customer row is deleted and re-created by an unmerge.
    absorbed_id: uuid.UUID
    identity_ids: list[str] = Field(default_factory=list, sa_type=JSONValue)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    # "email", "phone" or "staff"; with the hashes or the staff member that decided it.
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    merged_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    unmerged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
