import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class AuditLog(TenantModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_time", "shop_id", "occurred_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100)
    target: str = Field(default="", max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
