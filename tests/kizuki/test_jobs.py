import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from arq import Retry
from arq.connections import ArqRedis, RedisSettings, create_pool

from domain.jobs import Job, JobBuffer, JobQueue, JobRequest
from kizuki.jobs import (
    ArqJobQueue,
    InProcessJobQueue,
    JobFunction,
    backoff,
    create_arq_pool,
    decode_job,
    encode_job,
)


@dataclass
class Trace:
    """What the test jobs saw: (job_id, job_try, n) per run, and how many ran at once."""

    runs: list[tuple[str, int, int]] = field(default_factory=list)
    running: int = 0
    most_at_once: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    queue: JobQueue | None = None


@dataclass(frozen=True)
class Ctx:
    trace: Trace
    job_id: str
    job_try: int


async def record(ctx: Ctx, *, n: int) -> None:
    ctx.trace.runs.append((ctx.job_id, ctx.job_try, n))


async def fail(ctx: Ctx, *, n: int) -> None:
    raise RuntimeError(f"job {n} broke")


async def wait_for_release(ctx: Ctx, *, n: int) -> None:
    trace = ctx.trace
    trace.running += 1
    trace.most_at_once = max(trace.most_at_once, trace.running)
    try:
        await trace.release.wait()
    finally:
        trace.running -= 1
    trace.runs.append((ctx.job_id, ctx.job_try, n))


async def retry_twice(ctx: Ctx, *, n: int) -> None:
    ctx.trace.runs.append((ctx.job_id, ctx.job_try, n))
    if ctx.job_try < 3:
        raise Retry(defer=0.01)


async def retry_forever(ctx: Ctx, *, n: int) -> None:
    ctx.trace.runs.append((ctx.job_id, ctx.job_try, n))
    raise Retry


async def send_follow_up(ctx: Ctx, *, n: int) -> None:
    assert ctx.trace.queue is not None
    await asyncio.sleep(0.01)
    await ctx.trace.queue.send([JobRequest(Job.PUBLISH_EVENT, {"n": n + 1})])


def runner(
    trace: Trace,
    functions: dict[Job, JobFunction[Ctx]],
    *,
    max_jobs: int = 4,
    max_tries: int = 5,
    job_timeout: float = 5.0,
) -> InProcessJobQueue[Ctx]:
    queue = InProcessJobQueue(
        functions,
        lambda job_id, job_try: Ctx(trace, job_id, job_try),
        max_jobs=max_jobs,
        max_tries=max_tries,
        job_timeout=job_timeout,
        retry_delay=lambda job_try: 0.0,
    )
    trace.queue = queue
    return queue


@pytest.fixture
async def trace() -> AsyncIterator[Trace]:
    trace = Trace()
    yield trace
    # Whatever a test left running is a bug of that test: fail it here, leave no task behind.
    if isinstance(trace.queue, InProcessJobQueue):
        active = trace.queue.active
        await trace.queue.aclose(grace_seconds=1)
        assert active == 0, f"{active} jobs were still queued or running"


async def test_buffered_jobs_run_only_after_flush_and_never_after_discard(trace: Trace) -> None:
    queue = runner(trace, {Job.PING: record})
    buffer = JobBuffer(queue)

    buffer.enqueue(Job.PING, n=1)
    await asyncio.sleep(0.02)
    assert trace.runs == []

    await buffer.flush()
    await queue.drain()
    assert [n for _, _, n in trace.runs] == [1]

    buffer.enqueue(Job.PING, n=2)
    buffer.discard()
    await buffer.flush()
    await queue.drain()
    assert [n for _, _, n in trace.runs] == [1]
    assert queue.active == 0


async def test_a_failing_job_does_not_stop_the_others(
    trace: Trace, caplog: pytest.LogCaptureFixture
) -> None:
    queue = runner(trace, {Job.PING: record, Job.PUBLISH_EVENT: fail})

    with caplog.at_level(logging.ERROR, logger="kizuki.jobs"):
        await queue.send(
            [
                JobRequest(Job.PUBLISH_EVENT, {"n": 1}, "broken"),
                JobRequest(Job.PING, {"n": 2}),
                JobRequest(Job.PING, {"n": 3}),
            ]
        )
        await queue.drain()

    assert sorted(n for _, _, n in trace.runs) == [2, 3]
    [failure] = queue.failures
    assert (failure.job_id, failure.tries, failure.error) == (
        "broken",
        1,
        "RuntimeError('job 1 broke')",
    )
    assert "job publish_event broken failed" in caplog.text


async def test_same_job_id_runs_once_while_queued_or_running(trace: Trace) -> None:
    queue = runner(trace, {Job.PING: wait_for_release})
    request = JobRequest(Job.PING, {"n": 1}, "ping:shop-1")

    await queue.send([request, request])
    await asyncio.sleep(0.01)
    await queue.send([request])
    assert queue.active == 1

    trace.release.set()
    await queue.drain()
    assert trace.runs == [("ping:shop-1", 1, 1)]

    await queue.send([request])  # finished: the same id is work again
    await queue.drain()
    assert len(trace.runs) == 2


async def test_retry_runs_again_with_the_next_try_number(trace: Trace) -> None:
    queue = runner(trace, {Job.PING: retry_twice, Job.PUBLISH_EVENT: retry_forever}, max_tries=4)

    await queue.send(
        [JobRequest(Job.PING, {"n": 1}, "a"), JobRequest(Job.PUBLISH_EVENT, {"n": 2}, "b")]
    )
    await queue.drain()

    assert [(job_try, n) for job_id, job_try, n in trace.runs if job_id == "a"] == [
        (1, 1),
        (2, 1),
        (3, 1),
    ]
    assert [job_try for job_id, job_try, _ in trace.runs if job_id == "b"] == [1, 2, 3, 4]
    [failure] = queue.failures
    assert (failure.job_id, failure.tries) == ("b", 4)
    assert "retry after 4 tries" in failure.error


async def test_jobs_beyond_max_jobs_wait_for_a_free_slot(trace: Trace) -> None:
    queue = runner(trace, {Job.PING: wait_for_release}, max_jobs=2)

    await queue.send([JobRequest(Job.PING, {"n": n}) for n in range(5)])
    await asyncio.sleep(0.05)
    assert (trace.running, queue.active) == (2, 5)

    trace.release.set()
    await queue.drain()
    assert trace.most_at_once == 2
    assert sorted(n for _, _, n in trace.runs) == [0, 1, 2, 3, 4]


async def test_a_job_past_its_timeout_fails(trace: Trace) -> None:
    queue = runner(trace, {Job.PING: wait_for_release}, job_timeout=0.05)

    await queue.send([JobRequest(Job.PING, {"n": 1}, "slow")])
    await queue.drain()

    [failure] = queue.failures
    assert (failure.job_id, failure.error) == ("slow", "timed out after 0.05s")
    assert trace.runs == []


async def test_drain_waits_for_jobs_that_jobs_sent(trace: Trace) -> None:
    queue = runner(trace, {Job.PING: send_follow_up, Job.PUBLISH_EVENT: record})

    await queue.send([JobRequest(Job.PING, {"n": 1})])
    await queue.drain()

    assert [n for _, _, n in trace.runs] == [2]
    assert queue.active == 0


async def test_aclose_cancels_what_outlives_the_grace_and_refuses_new_jobs(trace: Trace) -> None:
    queue = runner(trace, {Job.PING: wait_for_release})
    await queue.send([JobRequest(Job.PING, {"n": 1})])
    await asyncio.sleep(0.01)

    await queue.aclose(grace_seconds=0.05)
    await queue.send([JobRequest(Job.PING, {"n": 2}, "late")])

    assert (queue.active, trace.running, trace.runs) == (0, 0, [])
    [failure] = queue.failures
    assert (failure.job_id, failure.error) == ("late", "the job queue is closed")


async def test_arq_reserved_argument_names_are_refused_before_anything_is_sent(
    trace: Trace,
) -> None:
    queue = runner(trace, {Job.PING: record})

    with pytest.raises(ValueError, match="reserved argument names: _defer_by"):
        await queue.send(
            [JobRequest(Job.PING, {"n": 1}), JobRequest(Job.PING, {"n": 2, "_defer_by": 5})]
        )
    await queue.drain()
    assert trace.runs == []


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [backoff(job_try) for job_try in (1, 2, 3, 8, 9, 50)] == [2, 4, 8, 256, 300, 300]


def test_queued_jobs_are_json_not_pickle() -> None:
    data: dict[str, object] = {"f": "ping", "a": [], "k": {"shop_id": "x"}, "t": None, "et": 1}

    assert encode_job(data) == b'{"f":"ping","a":[],"k":{"shop_id":"x"},"t":null,"et":1}'
    assert decode_job(encode_job(data)) == data
    assert decode_job(encode_job({"r": RuntimeError("x")}))["r"] == "RuntimeError('x')"
    with pytest.raises(ValueError, match="JSON object, not list"):
        decode_job(b"[]")


@pytest.fixture
async def arq_pool(redis_available: str) -> AsyncIterator[ArqRedis]:
    pool = await create_arq_pool(redis_available)
    yield pool
    await pool.aclose()


async def test_arq_queue_enqueues_each_job_once_per_job_id(arq_pool: ArqRedis, unique: str) -> None:
    queue_name = f"kizuki-test:{unique}:jobs"
    queue = ArqJobQueue(arq_pool, queue_name=queue_name)
    job_id = f"ping:{unique}"
    try:
        await queue.send(
            [
                JobRequest(Job.PING, {"shop_id": "s-1"}, job_id),
                JobRequest(Job.PING, {"shop_id": "s-1"}, job_id),
                JobRequest(
                    Job.PUBLISH_EVENT, {"shop_id": "s-1", "topic": "ping", "data_json": "{}"}
                ),
            ]
        )

        queued = await arq_pool.queued_jobs(queue_name=queue_name)
        assert sorted((job.function, job.kwargs) for job in queued) == [
            ("ping", {"shop_id": "s-1"}),
            ("publish_event", {"shop_id": "s-1", "topic": "ping", "data_json": "{}"}),
        ]
        assert job_id in {job.job_id for job in queued}
    finally:
        ids = [member.decode() for member in await arq_pool.zrange(queue_name, 0, -1)]
        await arq_pool.delete(queue_name, *(f"arq:job:{id_}" for id_ in ids))


async def test_arq_queue_refuses_a_pool_that_would_pickle(redis_available: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_available))
    try:
        with pytest.raises(ValueError, match="create_arq_pool"):
            ArqJobQueue(pool)
    finally:
        await pool.aclose()
