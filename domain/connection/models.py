import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_CREDENTIALS = "needs_credentials"
    ERROR = "error"
    DISCONNECTED = "disconnected"


class SyncKind(StrEnum):
    # The first sync without `since`, and the jobs that continue it, until `backfilled_at`.
    BACKFILL = "backfill"
    INCREMENTAL = "incremental"
    # A re-sync from a given `since`.
    MANUAL = "manual"
    # The daily re-read of the last `Settings.sync_reconcile_days` days of a backfilled
    # connection, for changes the incremental syncs and webhooks missed.
    RECONCILE = "reconcile"


class SyncStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Connection(TenantModel, table=True):
    """One account of a shop on one mall (or the CSV import of one mall's data)."""

    __table_args__ = (UniqueConstraint("shop_id", "platform", "external_account_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    platform: str = Field(max_length=32)
    name: str = Field(default="", max_length=200)
    external_account_id: str = Field(max_length=200)
    # Fernet token of the JSON credentials; never returned through the API.
    credentials_encrypted: str | None = Field(default=None, sa_type=Text)
    base_url: str | None = Field(default=None, max_length=500)
    status: ConnectionStatus = Field(default=ConnectionStatus.ACTIVE, sa_type=String(24))
    cursors: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    last_sync_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    # Set when the first sync has read all the history the mall allows.
    backfilled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Share of the history the backfill has read (0 to 1), as the mall estimates it; None until
    # the mall first tells. Only rises; 1 once `backfilled_at` is set.
    backfill_progress: float | None = None
    # A running sync holds the connection until then: one sync per connection at a time.
    sync_lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncRun(TenantModel, table=True):
    __tablename__ = "sync_run"
    __table_args__ = (
        ForeignKeyConstraint(["shop_id", "connection_id"], ["connection.shop_id", "connection.id"]),
        Index("ix_sync_run_connection", "shop_id", "connection_id", "started_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connection_id: uuid.UUID
    kind: str = Field(default="incremental", max_length=32)
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: SyncStatus = Field(default=SyncStatus.RUNNING, sa_type=String(16))
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    counts: dict[str, int] = Field(default_factory=dict, sa_type=JSONValue)
    errors: list[str] = Field(default_factory=list, sa_type=JSONValue)
    # Backfill runs: the connection's `backfill_progress` after the run's last stored page
    # (from where the previous run left it). None for other runs.
    backfill_progress: float | None = None


class WebhookInbox(TenantModel, table=True):
    """Every accepted webhook once, keyed by the mall's event id, before it is processed."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("shop_id", "connection_id", "event_id"),
        ForeignKeyConstraint(["shop_id", "connection_id"], ["connection.shop_id", "connection.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connection_id: uuid.UUID
    event_id: str = Field(max_length=200)
    topic: str = Field(max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=Text)
