"""The two `JobQueue` implementations: arq over Redis (production) and in-process (embedded).

A job function is written once, arq style, and runs unchanged under both:

    async def fn(ctx: WorkerContext, *, shop_id: str, ...) -> object

`ctx` carries the worker's resources plus `job_id` and `job_try` (1 on the first try); keyword
arguments are `JobArg` scalars. Raising `arq.Retry` asks for another try (at most `max_tries`
in all); any other exception fails the job, which is logged and not retried, as arq does.
"""

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from itertools import count
from typing import Concatenate, Generic, TypeAlias, TypeVar

from arq import Retry
from arq.connections import ArqRedis, RedisSettings, create_pool

from domain.jobs import Job, JobRequest

logger = logging.getLogger(__name__)

ContextT = TypeVar("ContextT")

# `Callable[..., …]` after the context because each job declares its own keyword arguments.
JobFunction: TypeAlias = Callable[Concatenate[ContextT, ...], Awaitable[object]]
# Builds the `ctx` of one try: (job_id, job_try) -> ctx.
ContextFactory: TypeAlias = Callable[[str, int], ContextT]

QUEUE_NAME = "kizuki:jobs"
MAX_BACKOFF_SECONDS = 300.0


def backoff(job_try: int) -> float:
    """Seconds to wait after failed try `job_try` (1, 2, …): 2, 4, 8 … capped at five minutes."""
    return min(2.0 ** max(job_try, 1), MAX_BACKOFF_SECONDS)


def encode_job(data: Mapping[str, object]) -> bytes:
    """arq's job and result serialiser: JSON, so reading a queue entry can never run code."""
    # Results may hold an exception; its repr is all anyone reads of it.
    return json.dumps(data, default=repr, separators=(",", ":")).encode()


def decode_job(raw: bytes) -> dict[str, object]:
    """arq's deserialiser, the inverse of `encode_job`."""
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"a queued job is a JSON object, not {type(value).__name__}")
    return value


async def create_arq_pool(redis_url: str) -> ArqRedis:
    """A Redis client that enqueues jobs the way Kizuki's workers read them."""
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=encode_job,
        job_deserializer=decode_job,
        default_queue_name=QUEUE_NAME,
    )


def _check_arguments(request: JobRequest) -> None:
    """Refuse argument names arq reserves for itself (`_job_id`, `_defer_by`, …)."""
    reserved = sorted(name for name in request.kwargs if name.startswith("_"))
    if reserved:
        raise ValueError(f"job {request.job} has reserved argument names: {', '.join(reserved)}")


class ArqJobQueue:
    """Sends committed jobs to arq workers through Redis.

    A request whose `job_id` is already queued or running is not enqueued again (arq refuses
    it atomically); workers keep no results, so once it finished the same id runs anew.
    """

    def __init__(self, pool: ArqRedis, *, queue_name: str = QUEUE_NAME) -> None:
        if pool.job_serializer is not encode_job:
            raise ValueError(
                "the arq pool must serialise jobs as Kizuki's workers read them; "
                "create it with kizuki.jobs.create_arq_pool"
            )
        self._pool = pool
        self._queue_name = queue_name

    async def send(self, requests: list[JobRequest]) -> None:
        for request in requests:
            _check_arguments(request)
        # Typed loosely on purpose: `_check_arguments` keeps job arguments off arq's own `_x`.
        enqueue: Callable[..., Awaitable[object]] = self._pool.enqueue_job
        for request in requests:
            sent = await enqueue(
                request.job.value,
                _job_id=request.job_id,
                _queue_name=self._queue_name,
                **request.kwargs,
            )
            if sent is None:
                logger.info(
                    "job %s %s is already queued or running; not sent again",
                    request.job.value,
                    request.job_id,
                )


@dataclass(frozen=True, slots=True)
class JobFailure:
    """A job the in-process runner gave up on, kept for operators and tests."""

    request: JobRequest
    job_id: str
    tries: int
    error: str


class InProcessJobQueue(Generic[ContextT]):
    """Runs committed jobs as tasks on this process's event loop, with arq's semantics.

    Same `job_id` while queued or running: sent once. At most `max_jobs` run at a time, each
    for at most `job_timeout` seconds. Jobs still queued when the process stops are lost, so
    the embedded shape is at-most-once across restarts; use Redis for anything that matters.
    """

    def __init__(
        self,
        functions: Mapping[Job, JobFunction[ContextT]],
        context: ContextFactory[ContextT],
        *,
        max_jobs: int = 4,
        max_tries: int = 5,
        job_timeout: float = 300.0,
        retry_delay: Callable[[int], float] = backoff,
        failures_kept: int = 100,
    ) -> None:
        if max_jobs < 1 or max_tries < 1 or job_timeout <= 0:
            raise ValueError("max_jobs and max_tries must be at least 1, job_timeout positive")
        self._functions = dict(functions)
        self._context = context
        self._slots = asyncio.Semaphore(max_jobs)
        self._max_tries = max_tries
        self._job_timeout = job_timeout
        self._retry_delay = retry_delay
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self.failures: deque[JobFailure] = deque(maxlen=failures_kept)

    @property
    def active(self) -> int:
        """Jobs queued, running or waiting to retry."""
        return len(self._tasks)

    async def send(self, requests: list[JobRequest]) -> None:
        for request in requests:
            _check_arguments(request)
        for request in requests:
            job_id = request.job_id or uuid.uuid4().hex
            if self._closed:
                self._fail(request, job_id, 0, "the job queue is closed")
            elif job_id in self._tasks:
                logger.info(
                    "job %s %s is already queued or running; not sent again",
                    request.job.value,
                    job_id,
                )
            else:
                self._tasks[job_id] = asyncio.create_task(
                    self._run(job_id, request), name=f"kizuki-job {request.job.value} {job_id}"
                )

    async def drain(self) -> None:
        """Wait until no job is queued or running, including jobs those jobs sent."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def aclose(self, *, grace_seconds: float = 30.0) -> None:
        """Refuse new jobs, give unfinished ones `grace_seconds`, then cancel the rest."""
        self._closed = True
        try:
            async with asyncio.timeout(grace_seconds):
                await self.drain()
        except TimeoutError:
            tasks = list(self._tasks.values())
            logger.warning("cancelling %d unfinished jobs at shutdown", len(tasks))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job_id: str, request: JobRequest) -> None:
        try:
            function = self._functions.get(request.job)
            if function is None:
                self._fail(request, job_id, 0, f"no function is registered for {request.job}")
                return
            for job_try in count(1):
                delay = await self._try(function, job_id, job_try, request)
                if delay is None:
                    return
                await asyncio.sleep(delay)
        finally:
            del self._tasks[job_id]

    async def _try(
        self, function: JobFunction[ContextT], job_id: str, job_try: int, request: JobRequest
    ) -> float | None:
        """Run one try; the delay before the next, or None when the job is done with."""
        deadline = asyncio.timeout(self._job_timeout)
        try:
            # Waiting for a free slot does not count towards the job's timeout.
            async with self._slots, deadline:
                await function(self._context(job_id, job_try), **request.kwargs)
        except Retry as retry:
            if job_try >= self._max_tries:
                self._fail(request, job_id, job_try, f"still asking to retry after {job_try} tries")
                return None
            delay = (
                retry.defer_score / 1000
                if retry.defer_score is not None
                else self._retry_delay(job_try)
            )
            logger.info("job %s %s retrying in %.2fs", request.job.value, job_id, delay)
            return delay
        # The worker wrapper: one failing job must never stop the runner or the others.
        except Exception as error:
            if isinstance(error, TimeoutError) and deadline.expired():
                self._fail(request, job_id, job_try, f"timed out after {self._job_timeout}s")
            else:
                logger.exception("job %s %s failed", request.job.value, job_id)
                self._fail(request, job_id, job_try, repr(error))
        return None

    def _fail(self, request: JobRequest, job_id: str, tries: int, error: str) -> None:
        logger.error("job %s %s failed after %d tries: %s", request.job.value, job_id, tries, error)
        self.failures.append(JobFailure(request, job_id, tries, error))
