import asyncio
from datetime import UTC, datetime, timedelta

from domain.jobs import Job, JobRequest
from domain.settings import Settings
from kizuki.runtime import open_runtime
from kizuki.scheduler import CronScheduler, cron_job_of
from workers.main import schedules


class Clock:
    """A clock that moves only when the scheduler sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []
        self.moved = asyncio.Event()

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        self.moved.set()
        await asyncio.sleep(0)


class Recording:
    def __init__(self, stop_after: int) -> None:
        self.sent: list[JobRequest] = []
        self.done = asyncio.Event()
        self._stop_after = stop_after

    async def send(self, requests: list[JobRequest]) -> None:
        self.sent.extend(requests)
        if len(self.sent) >= self._stop_after:
            self.done.set()


def test_the_cron_list_runs_sync_fan_out_every_minute_and_risk_hourly() -> None:
    by_job = {cron_job_of(cron): cron for cron in schedules()}

    assert set(by_job) == {Job.SCHEDULE_SYNCS, Job.SCHEDULE_RISK_RECOMPUTES}
    assert by_job[Job.SCHEDULE_SYNCS].second == 0
    assert by_job[Job.SCHEDULE_SYNCS].minute is None
    assert by_job[Job.SCHEDULE_RISK_RECOMPUTES].minute == 5


async def test_the_embedded_scheduler_sends_the_same_cron_jobs_when_due() -> None:
    clock = Clock(datetime(2025, 1, 6, 10, 2, 30, tzinfo=UTC))
    queue = Recording(stop_after=6)
    scheduler = CronScheduler(schedules(), queue, clock=clock, sleep=clock.sleep)

    scheduler.start()
    await asyncio.wait_for(queue.done.wait(), timeout=5)
    await scheduler.aclose()

    assert [(r.job, r.job_id) for r in queue.sent[:6]] == [
        (Job.SCHEDULE_SYNCS, "cron:schedule_syncs:2025-01-06T10:03:00.123456+00:00"),
        (Job.SCHEDULE_SYNCS, "cron:schedule_syncs:2025-01-06T10:04:00.123456+00:00"),
        (
            Job.SCHEDULE_RISK_RECOMPUTES,
            "cron:schedule_risk_recomputes:2025-01-06T10:05:00.123456+00:00",
        ),
        (Job.SCHEDULE_SYNCS, "cron:schedule_syncs:2025-01-06T10:05:00.123456+00:00"),
        (Job.SCHEDULE_SYNCS, "cron:schedule_syncs:2025-01-06T10:06:00.123456+00:00"),
        (Job.SCHEDULE_SYNCS, "cron:schedule_syncs:2025-01-06T10:07:00.123456+00:00"),
    ]


async def test_the_embedded_scheduler_stops_cleanly() -> None:
    queue = Recording(stop_after=1)
    scheduler = CronScheduler(schedules(), queue)

    scheduler.start()
    await asyncio.sleep(0)
    await scheduler.aclose()
    await scheduler.aclose()

    assert queue.sent == []
    assert all(t.get_name() != "kizuki-cron" for t in asyncio.all_tasks())


async def test_the_embedded_runtime_runs_the_scheduler_until_it_closes(
    settings: Settings,
) -> None:
    async with open_runtime(settings, platforms={}) as runtime:
        running = [t for t in asyncio.all_tasks() if t.get_name() == "kizuki-cron"]
        assert runtime.platforms == {}
        assert len(running) == 1

    assert running[0].cancelled()
