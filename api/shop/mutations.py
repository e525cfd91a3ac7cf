from datetime import UTC, datetime
from typing import Annotated

import strawberry

from api.context import Info
from api.errors import UserError
from api.fields import mutation
from api.relay import decode_id_of
from api.shop.types import ApiKey, Shop
from domain.shop.models import Role
from domain.shop.service import issue_api_key, revoke_api_key, update_shop


@strawberry.input(description="Only the fields given change.")
class UpdateShopInput:
    name: str | None = None
    timezone: str | None = strawberry.field(
        default=None, description="An IANA time zone, like Asia/Tokyo."
    )
    horizon_days: int | None = strawberry.field(default=None, description="1 to 730.")


@strawberry.type
class UpdateShopPayload:
    shop: Shop


@strawberry.input
class CreateApiKeyInput:
    name: str
    role: Role


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey
    key: str = strawberry.field(
        description="The secret, shown this once: send it as `Authorization: Bearer <key>`."
    )


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey


UpdateShopResult = Annotated[UpdateShopPayload | UserError, strawberry.union("UpdateShopResult")]
CreateApiKeyResult = Annotated[
    CreateApiKeyPayload | UserError, strawberry.union("CreateApiKeyResult")
]
RevokeApiKeyResult = Annotated[
    RevokeApiKeyPayload | UserError, strawberry.union("RevokeApiKeyResult")
]


@strawberry.type
class ShopMutation:
    @mutation("Change the shop's name, time zone or risk horizon.")
    async def update_shop(self, info: Info, input: UpdateShopInput) -> UpdateShopResult:
        context = info.context
        shop = await context.run(
            update_shop,
            actor=context.principal.actor,
            name=input.name,
            timezone=input.timezone,
            horizon_days=input.horizon_days,
        )
        return UpdateShopPayload(shop=Shop.from_model(shop))

    @mutation("Create an API key; its secret is in the payload, and only there.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyResult:
        context = info.context
        key, secret = await context.run(
            issue_api_key,
            actor=context.principal.actor,
            name=input.name,
            role=input.role,
        )
        return CreateApiKeyPayload(api_key=ApiKey.from_model(key), key=secret)

    @mutation("Revoke an API key at once. The shop's last admin key cannot be revoked.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyResult:
        context = info.context
        key = await context.run(
            revoke_api_key,
            decode_id_of(id, "ApiKey"),
            actor=context.principal.actor,
            now=datetime.now(UTC),
        )
        return RevokeApiKeyPayload(api_key=ApiKey.from_model(key))
