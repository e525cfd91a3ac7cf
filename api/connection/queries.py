import strawberry

from api.connection.types import StoreConnection
from api.context import Info
from api.fields import field
from domain.connection.service import list_connections


@strawberry.type
class ConnectionQuery:
    @field("The shop's mall accounts, oldest first.")
    async def connections(self, info: Info) -> list[StoreConnection]:
        rows = await info.context.run(list_connections)
        return [StoreConnection.from_row(row) for row in rows]
