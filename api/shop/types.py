from datetime import datetime

import strawberry

from api.relay import Node, encode_id
from domain.shop.models import ApiKey as ApiKeyModel
from domain.shop.models import Role
from domain.shop.models import Shop as ShopModel

strawberry.enum(
    Role,
    name="ApiKeyRole",
    description=(
        "ADMIN: everything; ANALYST: read-only; "
        "PARTNER: the shop and its connections, for integrations."
    ),
)


@strawberry.type(description="The shop (tenant) the API key belongs to.")
class Shop(Node):
    name: str
    timezone: str = strawberry.field(description="IANA zone used at the edges, like Asia/Tokyo.")
    currency: str
    horizon_days: int = strawberry.field(
        description="Risk horizon: a customer's risk is the chance of no purchase in these days."
    )
    created_at: datetime

    @classmethod
    def from_model(cls, shop: ShopModel) -> "Shop":
        return cls(
            id=encode_id("Shop", shop.id),
            name=shop.name,
            timezone=shop.timezone,
            currency=shop.currency,
            horizon_days=shop.horizon_days,
            created_at=shop.created_at,
        )


@strawberry.type(description="An API key; its secret is shown only once, when created.")
class ApiKey(Node):
    name: str
    role: Role
    prefix: str = strawberry.field(description="The first characters of the secret part.")
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, key: ApiKeyModel) -> "ApiKey":
        return cls(
            id=encode_id("ApiKey", key.id),
            name=key.name,
            role=Role(key.role),
            prefix=key.prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
