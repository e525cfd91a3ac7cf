"""Runtime configuration, read only by composition roots."""

from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every setting Kizuki reads, from `KIZUKI_*` environment variables or a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix="KIZUKI_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./kizuki.db"
    # Unset: jobs and events run in-process (embedded shape). Set: arq queue + Redis pub/sub.
    redis_url: str | None = None
    # Derives the key that encrypts mall credentials at rest; change it and stored ones are lost.
    secret_key: SecretStr = SecretStr("kizuki-development-secret-change-me")
    timezone: str = "Asia/Tokyo"
    environment: Environment = Environment.DEVELOPMENT
    # GraphiQL for admin keys; defaults to on in development only.
    graphiql: bool | None = None
    log_level: str = "INFO"
    max_query_depth: int = Field(default=12, ge=2)
    max_query_tokens: int = Field(default=2_000, ge=50)
    max_aliases: int = Field(default=30, ge=1)
    max_query_cost: int = Field(default=50_000, ge=1)
    # Database connection pool per process (PostgreSQL only).
    pool_size: int = Field(default=10, ge=1)
    # Mall connections are synced again once their last sync is this old (`schedule_syncs`).
    sync_interval_minutes: int = Field(default=5, ge=1)
    # A sync holds its connection this long past its last stored page; a killed one frees it then.
    sync_lease_seconds: int = Field(default=600, ge=10)
    # One sync job stops after this long and hands on to a new job, well within the job
    # timeout (300 s), so a long backfill is never cut off mid-page and left leased.
    sync_time_budget_seconds: int = Field(default=240, ge=1)
    # Once a day each backfilled mall connection re-reads this many days (`schedule_syncs`):
    # webhooks and incremental lists miss changes (docs/runtime.md). 0 turns it off.
    sync_reconcile_days: int = Field(default=30, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @property
    def graphiql_enabled(self) -> bool:
        return self.is_development if self.graphiql is None else self.graphiql
