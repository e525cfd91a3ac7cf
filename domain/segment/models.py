import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class Segment(TenantModel, table=True):
    __table_args__ = (UniqueConstraint("shop_id", "name"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    definition: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
