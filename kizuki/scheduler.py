"""The embedded shape's cron: `workers.main.schedules()` run on the server's own loop.

arq runs those periodic jobs in production; with no Redis, `kizuki serve` runs this scheduler
next to its in-process job queue. Each due cron job is sent to the queue with a job id naming
the job and the minute it was due, so it runs once per due time, as under arq.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from arq.cron import CronJob, next_cron

from domain.jobs import Job, JobQueue, JobRequest

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
CRON_PREFIX = "cron:"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def cron_job_of(cron: CronJob) -> Job:
    """The registered job a cron entry runs (its name is `cron:<job>`)."""
    return Job(cron.name.removeprefix(CRON_PREFIX))


def _next(cron: CronJob, after: datetime) -> datetime:
    # arq's own calendar arithmetic, on naive UTC as arq uses it.
    naive = next_cron(
        after.astimezone(UTC).replace(tzinfo=None),
        month=cron.month,
        day=cron.day,
        weekday=cron.weekday,
        hour=cron.hour,
        minute=cron.minute,
        second=cron.second,
        microsecond=cron.microsecond,
    )
    return naive.replace(tzinfo=UTC)


class CronScheduler:
    """Sends each cron job to the queue when due, until `aclose()`."""

    def __init__(
        self,
        crons: Sequence[CronJob],
        queue: JobQueue,
        *,
        clock: Clock = _utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._crons = [(cron, cron_job_of(cron)) for cron in crons]
        self._queue = queue
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kizuki-cron")

    async def aclose(self) -> None:
        """Stop at once; a job already sent runs on in the queue."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        now = self._clock()
        due = {cron.name: _next(cron, now) for cron, _ in self._crons}
        while True:
            moment = min(due.values())
            wait = (moment - self._clock()).total_seconds()
            if wait > 0:
                await self._sleep(wait)
                continue
            requests = [
                JobRequest(job, {}, job_id=f"{cron.name}:{due[cron.name].isoformat()}")
                for cron, job in self._crons
                if due[cron.name] <= moment
            ]
            for cron, _ in self._crons:
                if due[cron.name] <= moment:
                    due[cron.name] = _next(cron, moment)
            try:
                await self._queue.send(requests)
            except Exception:
                # The scheduler outlives one failed send; the next due time tries again.
                logger.exception("could not send cron jobs %s", [r.job_id for r in requests])
