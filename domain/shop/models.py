import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.db import JSONValue, TenantModel, UTCDateTime, utcnow
from domain.ids import new_id


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    PARTNER = "partner"


class Shop(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    timezone: str = Field(default="Asia/Tokyo", max_length=64)
    currency: str = Field(default="JPY", max_length=3)
    # Risk horizon H: the window "no purchase in the next H days" is predicted for.
    horizon_days: int = 90
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(TenantModel, table=True):
    __tablename__ = "api_key"
    __table_args__ = (UniqueConstraint("shop_id", "key_hash"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(default="", max_length=200)
    role: Role = Field(sa_type=String(16))
    # The first characters of the secret, shown in listings so a key can be recognised.
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_type=JSONValue)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
