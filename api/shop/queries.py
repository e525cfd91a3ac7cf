import strawberry

from api.context import Info
from api.fields import field
from api.shop.types import ApiKey, Shop
from domain.shop.service import list_api_keys, require_shop


@strawberry.type
class ShopQuery:
    @field("The shop of the API key.")
    async def shop(self, info: Info) -> Shop:
        return Shop.from_model(await info.context.run(require_shop))

    @field("The shop's API keys, revoked ones included (admin keys only).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        keys = await info.context.run(list_api_keys)
        return [ApiKey.from_model(key) for key in keys]
