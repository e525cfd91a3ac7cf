import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from api.batching import by_key
from domain.connection.service import ConnectionRow, get_connections

if TYPE_CHECKING:
    from api.context import Context


def connections(context: "Context") -> DataLoader[uuid.UUID, ConnectionRow | None]:
    return by_key(context, get_connections)
