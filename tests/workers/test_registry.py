import pytest
from pydantic import SecretStr

from domain.jobs import Job
from domain.settings import Settings
from workers.main import schedules, worker_settings
from workers.registry import JOB_FUNCTIONS


def redis_settings() -> Settings:
    return Settings(
        _env_file=None,
        database_url="sqlite+aiosqlite:///:memory:",
        redis_url="redis://127.0.0.1:6379/15",
        secret_key=SecretStr("test-secret"),
    )


def test_arq_registers_exactly_the_job_names() -> None:
    names = {function.name for function in worker_settings(redis_settings())["functions"]}

    assert names == {job.value for job in Job}
    assert set(JOB_FUNCTIONS) == set(Job)


def test_arq_functions_are_the_registered_ones() -> None:
    functions = {f.name: f.coroutine for f in worker_settings(redis_settings())["functions"]}

    assert functions == {job.value: function for job, function in JOB_FUNCTIONS.items()}


def test_worker_settings_need_redis() -> None:
    settings = redis_settings().model_copy(update={"redis_url": None})

    with pytest.raises(ValueError, match="KIZUKI_REDIS_URL"):
        worker_settings(settings)


def test_the_nightly_risk_fan_out_is_scheduled_hourly() -> None:
    (job,) = [job for job in schedules() if job.name == "cron:schedule_risk_recomputes"]

    assert job.name == "cron:schedule_risk_recomputes"
    assert job.coroutine is JOB_FUNCTIONS[Job.SCHEDULE_RISK_RECOMPUTES]
    assert job.minute == 5
    assert job.unique
