import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from api.batching import by_key
from domain.risk.queries import PointRow, ScoreRow, history_by_customer, scores_by_customer

if TYPE_CHECKING:
    from api.context import Context


def scores_of_customer(context: "Context") -> DataLoader[uuid.UUID, ScoreRow | None]:
    return by_key(context, scores_by_customer)


def history_of_customer(
    context: "Context",
) -> DataLoader[tuple[uuid.UUID, int], list[PointRow]]:
    """Keyed by (customer, how many points): one query per distinct length in a batch."""

    async def load(keys: list[tuple[uuid.UUID, int]]) -> list[list[PointRow]]:
        by_limit: dict[int, list[uuid.UUID]] = defaultdict(list)
        for customer_id, limit in keys:
            by_limit[limit].append(customer_id)
        found: dict[tuple[uuid.UUID, int], list[PointRow]] = {}
        for limit, customer_ids in by_limit.items():
            points = await context.run(history_by_customer, customer_ids, limit=limit)
            for customer_id, rows in points.items():
                found[(customer_id, limit)] = rows
        return [found.get(key, []) for key in keys]

    return DataLoader(load_fn=load)
