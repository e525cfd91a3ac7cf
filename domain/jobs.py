"""Background jobs: the names, the buffer that sends them after commit, and the runner protocol.

Domain code asks for follow-up work with `jobs.enqueue(Job.X, ...)`; the unit of work hands
the buffer to the configured `JobQueue` (arq in production, in-process when embedded) only
after its transaction commits, and drops it on rollback.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Job(StrEnum):
    """Every job Kizuki runs; the worker registers exactly these names."""

    PING = "ping"
    PUBLISH_EVENT = "publish_event"
    RECOMPUTE_SHOP_RISK = "recompute_shop_risk"
    RESCORE_CUSTOMERS = "rescore_customers"
    SCHEDULE_RISK_RECOMPUTES = "schedule_risk_recomputes"
    SYNC_CONNECTION = "sync_connection"
    RECONCILE_CONNECTION = "reconcile_connection"
    SCHEDULE_SYNCS = "schedule_syncs"
    PROCESS_WEBHOOK = "process_webhook"


JobArg = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class JobRequest:
    job: Job
    kwargs: dict[str, JobArg]
    # Same id, same job: a queued or running duplicate is not enqueued again.
    job_id: str | None = None


class Jobs(Protocol):
    def enqueue(self, job: Job, *, _job_id: str | None = None, **kwargs: JobArg) -> None:
        """Ask for `job` to run after the current unit of work commits."""
        ...


class JobQueue(Protocol):
    async def send(self, requests: list[JobRequest]) -> None:
        """Hand committed jobs to the runner; at-least-once, so jobs must be idempotent."""
        ...


@dataclass
class JobBuffer:
    """The `Jobs` of one unit of work: collects requests until commit."""

    queue: JobQueue
    pending: list[JobRequest] = field(default_factory=list)

    def enqueue(self, job: Job, *, _job_id: str | None = None, **kwargs: JobArg) -> None:
        self.pending.append(JobRequest(job, dict(kwargs), _job_id))

    async def flush(self) -> None:
        """Send what was buffered (after commit)."""
        pending, self.pending = self.pending, []
        if pending:
            await self.queue.send(pending)

    def discard(self) -> None:
        """Forget what was buffered (after rollback)."""
        self.pending.clear()
