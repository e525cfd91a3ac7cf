import uuid
from datetime import datetime

import strawberry

from api.relay import Node, encode_id
from domain.connection.models import ConnectionStatus
from domain.connection.service import ConnectionRow

strawberry.enum(ConnectionStatus, name="ConnectionStatus")


@strawberry.type(
    description="The shop's account on one mall (a Shopify store, a Rakuten shop, an Amazon "
    "seller account). Credentials are never readable."
)
class StoreConnection(Node):
    platform: str = strawberry.field(description="shopify, rakuten, amazon, or a plugin's name.")
    name: str
    status: ConnectionStatus
    last_sync_at: datetime | None
    last_error: str | None
    created_at: datetime
    key: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: ConnectionRow) -> "StoreConnection":
        return cls(
            id=encode_id("StoreConnection", row.id),
            platform=row.platform,
            name=row.name,
            status=row.status,
            last_sync_at=row.last_sync_at,
            last_error=row.last_error,
            created_at=row.created_at,
            key=row.id,
        )
