"""What a sync did, page by page and in all: the counts a sync run stores and events carry."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from domain.ingest import IngestResult
from domain.platforms import PageStats, RecordBatch


@dataclass(frozen=True, slots=True)
class SyncCounts:
    """Tallies of one page or a whole run; `*_seen` count the records the mall sent."""

    pages: int = 0
    requests: int = 0
    orders_seen: int = 0
    orders_inserted: int = 0
    orders_updated: int = 0
    customers_seen: int = 0
    customers_inserted: int = 0
    customers_updated: int = 0
    subscriptions_seen: int = 0
    subscriptions_inserted: int = 0
    subscriptions_updated: int = 0
    subscription_events_inserted: int = 0
    throttle_waits: int = 0
    throttle_wait_ms: int = 0
    # Records the mall sent that could not be mapped or that the domain refused.
    rejected: int = 0

    def __add__(self, other: "SyncCounts") -> "SyncCounts":
        return SyncCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, stored: Mapping[str, object]) -> "SyncCounts":
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in stored.items() if key in names}
        return cls(**{key: int(value) for key, value in values.items()})  # type: ignore[call-overload]


def seen(batch: RecordBatch) -> SyncCounts:
    """The records a page brought, before anything is stored."""
    return SyncCounts(
        orders_seen=len(batch.orders),
        customers_seen=len(batch.customers),
        subscriptions_seen=len(batch.subscriptions),
    )


def fetched(stats: PageStats, rejected: int, *, pages: int = 1) -> SyncCounts:
    """What fetching `pages` pages cost, and how many of their vendor records were unusable."""
    return SyncCounts(
        pages=pages,
        requests=stats.requests,
        throttle_waits=stats.throttle_waits,
        throttle_wait_ms=round(stats.throttle_wait_seconds * 1000),
        rejected=rejected,
    )


def stored(result: IngestResult) -> SyncCounts:
    """What ingest changed."""
    return SyncCounts(
        orders_inserted=result.orders.inserted,
        orders_updated=result.orders.updated,
        customers_inserted=result.customers.inserted,
        customers_updated=result.customers.updated,
        subscriptions_inserted=result.subscriptions.inserted,
        subscriptions_updated=result.subscriptions.updated,
        subscription_events_inserted=result.subscription_events.inserted,
    )
