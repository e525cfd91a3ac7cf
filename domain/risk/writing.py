"""Storing scores: current score upserted, history written on a change, band changes found.

A run's rows go, a slice of customers at a time, into a temporary table (`risk_batch`): by
COPY on PostgreSQL, by batched inserts on SQLite, each with what it changes against the stored
score (`domain.risk.changes`: whether it gets a history row, the recorded probability, band
changes). Two set-based statements then do the rest, the same on both backends: insert the
history rows, upsert `risk_score`. Idempotent by construction: the same shop, customers and
`as_of` give the same rows (history is keyed by (shop, customer, as_of)). A current score is
never replaced by one with an older `as_of`, so a backfill or a late job only adds history. A
rescoring job's few rows skip the temporary table (`write_few`): same rows, fewer round trips.

History is written on a change rather than every night: risk grows with every day of silence,
so nearly every customer's probability moves a little every night, and a row per customer per
night grew the history table, and each night's append into its indexes, by the whole
customer base.
"""

import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Float,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from domain.db import AsyncSession, UTCDateTime
from domain.ids import ShopId, new_id
from domain.ingest.statements import (
    chunked,
    dialect_name,
    execute_many,
    guarded_upsert,
    table_of,
)
from domain.risk.changes import Changes, compare, read_stored
from domain.risk.copy import driver_connection, execute
from domain.risk.models import RiskScore, RiskScoreHistory
from domain.risk.reasons import StoredSigns, stored_signs

FloatArray = NDArray[np.float64]
UuidArray = NDArray[np.void]

_SCORE = table_of(RiskScore)
_HISTORY = table_of(RiskScoreHistory)
# Rows per INSERT batch on SQLite.
_SQLITE_BATCH = 2_000
# `risk_score.expected_spend` is a 32-bit integer.
_MAX_SPEND = 2.0**31 - 1

BATCH = Table(
    "risk_batch",
    MetaData(),
    Column("customer_id", Uuid, primary_key=True),
    Column("history_id", Uuid, nullable=False),
    Column("probability", Float),
    Column("expected_purchases", Float),
    Column("expected_spend", BigInteger),
    Column("band", String(16), nullable=False),
    Column("reasons", Text().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("shown_signs", SmallInteger, nullable=False),
    Column("recorded_probability", Float),
    Column("history", Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True, slots=True)
class ScoreRows:
    """Scores of some customers; NaN probability means not scorable (stored as NULL)."""

    customer_ids: UuidArray  # 16-byte UUIDs
    probability: FloatArray
    expected_purchases: FloatArray
    expected_spend: FloatArray
    bands: list[str]
    reasons: list[str]  # JSON arrays
    shown: NDArray[np.int16]  # the signs the reasons show, as `reasons.sign_mask` bits


@dataclass(frozen=True, slots=True)
class BandChange:
    customer_id: uuid.UUID
    previous: str | None  # None: the customer had no score yet
    band: str
    probability: float | None
    signs: StoredSigns  # of the new score


@dataclass
class ScoreWriter:
    """Writes one run's scores (one `as_of`), a slice of customers at a time.

    Counts the customers whose current band changed and keeps the first `keep_changes` of
    them (in the order written).
    """

    session: AsyncSession
    shop_id: ShopId
    as_of: datetime
    horizon_days: int
    model_version: str
    now: datetime
    keep_changes: int
    changed: int = 0
    changes: list[BandChange] = field(default_factory=list)

    async def write(self, rows: ScoreRows) -> None:
        """Upsert these customers' current scores and their history rows where changed."""
        session = self.session
        stored = await read_stored(session, self.shop_id, rows.customer_ids, bulk=True)
        changes = compare(stored, rows.customer_ids, rows.bands, rows.probability, self.as_of)
        self._count_changes(rows, changes)
        if dialect_name(session) == "postgresql":
            # No ANALYZE: the planner sizes an unanalysed table by its pages, which is enough
            # for the nested loops over primary keys these statements need.
            await execute(session, text(f"TRUNCATE {BATCH.name}"))
            await _copy_in(session, rows, changes, self.now)
        else:
            await session.exec(BATCH.delete())
            await _insert_in(session, rows, changes, self.now)
        await self._upsert_history()
        await self._upsert_current()

    def _count_changes(self, rows: ScoreRows, changes: Changes) -> None:
        changed = np.flatnonzero(changes.band_changed)
        self.changed += int(changed.shape[0])
        room = max(self.keep_changes - len(self.changes), 0)
        self.changes += [_band_change(rows, changes, int(n)) for n in changed[:room]]

    async def _upsert_current(self) -> None:
        batch = BATCH
        values = {
            "shop_id": literal(self.shop_id, Uuid()),
            "customer_id": batch.c.customer_id,
            "probability": batch.c.probability,
            "expected_purchases": batch.c.expected_purchases,
            "expected_spend": batch.c.expected_spend,
            "band": batch.c.band,
            "reasons": batch.c.reasons,
            "shown_signs": batch.c.shown_signs,
            "horizon_days": literal(self.horizon_days),
            "as_of": literal(self.as_of, UTCDateTime()),
            "model_version": literal(self.model_version),
            "computed_at": literal(self.now, UTCDateTime()),
            "recorded_probability": batch.c.recorded_probability,
        }
        statement = _insert_from_batch(self.session, _SCORE, values)
        await self.session.exec(
            statement.on_conflict_do_update(
                index_elements=["shop_id", "customer_id"],
                set_={name: statement.excluded[name] for name in list(values)[2:]},
                where=_SCORE.c.as_of <= statement.excluded.as_of,
            )
        )

    async def _upsert_history(self) -> None:
        batch = BATCH
        values = {
            "shop_id": literal(self.shop_id, Uuid()),
            "id": batch.c.history_id,
            "customer_id": batch.c.customer_id,
            "probability": batch.c.probability,
            "expected_purchases": batch.c.expected_purchases,
            "band": batch.c.band,
            "reasons": batch.c.reasons,
            "as_of": literal(self.as_of, UTCDateTime()),
        }
        statement = _insert_from_batch(self.session, _HISTORY, values, where=batch.c.history)
        await self.session.exec(
            statement.on_conflict_do_update(
                index_elements=["shop_id", "customer_id", "as_of"],
                set_={
                    name: statement.excluded[name]
                    for name in ("probability", "expected_purchases", "band", "reasons")
                },
            )
        )


async def write_few(
    session: AsyncSession,
    shop_id: ShopId,
    rows: ScoreRows,
    *,
    as_of: datetime,
    horizon_days: int,
    model_version: str,
    now: datetime,
) -> list[BandChange]:
    """`ScoreWriter.write` for a rescoring job's few customers: three indexed statements,
    no temporary table. Returns every band change."""
    ids = [uuid.UUID(bytes=value.tobytes()) for value in rows.customer_ids]
    if not ids:
        return []
    stored = await read_stored(session, shop_id, rows.customer_ids, bulk=False)
    changes = compare(stored, rows.customer_ids, rows.bands, rows.probability, as_of)
    probability = _nullable(rows.probability)
    expected = _nullable(rows.expected_purchases)
    spend = _spend(rows.expected_spend)
    recorded = _nullable(changes.recorded)
    reasons = [json.loads(document) for document in rows.reasons]
    shown: list[int] = rows.shown.tolist()
    current = [
        {
            "shop_id": shop_id,
            "customer_id": customer_id,
            "probability": probability[n],
            "expected_purchases": expected[n],
            "expected_spend": spend[n],
            "band": rows.bands[n],
            "reasons": reasons[n],
            "shown_signs": shown[n],
            "horizon_days": horizon_days,
            "as_of": as_of,
            "model_version": model_version,
            "computed_at": now,
            "recorded_probability": recorded[n],
        }
        for n, customer_id in enumerate(ids)
    ]
    history = [
        {
            "shop_id": shop_id,
            "id": new_id(),
            "customer_id": customer_id,
            "probability": probability[n],
            "expected_purchases": expected[n],
            "band": rows.bands[n],
            "reasons": reasons[n],
            "as_of": as_of,
        }
        for n, customer_id in enumerate(ids)
        if changes.history[n]
    ]
    await execute_many(
        session,
        guarded_upsert(
            session,
            _SCORE,
            keys=["shop_id", "customer_id"],
            update=list(current[0])[2:],
            guard="as_of",
        ),
        current,
    )
    if history:
        await execute_many(
            session,
            guarded_upsert(
                session,
                _HISTORY,
                keys=["shop_id", "customer_id", "as_of"],
                update=["probability", "expected_purchases", "band", "reasons"],
            ),
            history,
        )
    return [_band_change(rows, changes, int(n)) for n in np.flatnonzero(changes.band_changed)]


@asynccontextmanager
async def score_writer(
    session: AsyncSession,
    shop_id: ShopId,
    *,
    as_of: datetime,
    horizon_days: int,
    model_version: str,
    now: datetime,
    keep_changes: int,
) -> AsyncIterator[ScoreWriter]:
    """A `ScoreWriter` for one run, with the temporary table it writes through."""
    await execute(session, text(f"DROP TABLE IF EXISTS {BATCH.name}"))
    await (await session.connection()).run_sync(BATCH.create)
    yield ScoreWriter(session, shop_id, as_of, horizon_days, model_version, now, keep_changes)
    # Only on success: after an error the transaction is rolled back, the table with it.
    await execute(session, text(f"DROP TABLE IF EXISTS {BATCH.name}"))


def uuid7_bytes(count: int, moment: datetime) -> UuidArray:
    """`count` fresh UUIDv7 values as 16-byte records: `moment`'s millisecond, then a 32-bit
    counter (time order within the call) and 42 random bits."""
    millis = int(moment.timestamp() * 1000)
    counter = np.arange(count, dtype=np.uint64)
    random = np.frombuffer(os.urandom(8 * count), dtype=np.uint64)
    high = np.full(count, (millis << 16) | 0x7000, dtype=np.uint64)
    high |= (counter >> np.uint64(20)) & np.uint64(0xFFF)
    low = (np.uint64(1) << np.uint64(63)) | ((counter & np.uint64(0xFFFFF)) << np.uint64(42))
    low |= random & np.uint64((1 << 42) - 1)
    pair = np.empty((count, 2), dtype=">u8")
    pair[:, 0], pair[:, 1] = high, low
    return pair.view("V16").reshape(count)


def _band_change(rows: ScoreRows, changes: Changes, n: int) -> BandChange:
    probability = float(rows.probability[n])
    return BandChange(
        uuid.UUID(bytes=rows.customer_ids[n].tobytes()),
        changes.previous_band(n),
        rows.bands[n],
        None if probability != probability else probability,  # NaN: not scorable
        stored_signs(json.loads(rows.reasons[n])),
    )


def _hex(ids: UuidArray) -> list[str]:
    digits = ids.tobytes().hex()
    return [digits[i : i + 32] for i in range(0, len(digits), 32)]


def _nullable(values: FloatArray) -> list[float | None]:
    listed: list[float] = values.tolist()
    return [None if value != value else value for value in listed]  # NaN → NULL


def _spend(values: FloatArray) -> list[int | None]:
    rounded: list[float] = np.round(np.clip(values, 0.0, _MAX_SPEND)).tolist()
    return [None if value != value else int(value) for value in rounded]


def _columns(rows: ScoreRows, changes: Changes, now: datetime) -> Sequence[Sequence[object]]:
    return (
        _hex(rows.customer_ids),
        _hex(uuid7_bytes(rows.customer_ids.shape[0], now)),
        _nullable(rows.probability),
        _nullable(rows.expected_purchases),
        _spend(rows.expected_spend),
        rows.bands,
        rows.reasons,
        rows.shown.tolist(),
        _nullable(changes.recorded),
        changes.history.tolist(),
    )


async def _copy_in(session: AsyncSession, rows: ScoreRows, changes: Changes, now: datetime) -> None:
    raw = await driver_connection(session)
    await raw.copy_records_to_table(
        BATCH.name,
        records=zip(*_columns(rows, changes, now), strict=True),
        columns=[column.name for column in BATCH.columns],
    )


async def _insert_in(
    session: AsyncSession, rows: ScoreRows, changes: Changes, now: datetime
) -> None:
    names = [column.name for column in BATCH.columns]
    columns = _columns(rows, changes, now)
    values = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    for row in values:
        row["customer_id"] = uuid.UUID(str(row["customer_id"]))
        row["history_id"] = uuid.UUID(str(row["history_id"]))
    for chunk in chunked(values, _SQLITE_BATCH):
        await session.exec(BATCH.insert(), params=list(chunk))


def _insert_from_batch(
    session: AsyncSession,
    table: Table,
    values: Mapping[str, ColumnElement[Any]],
    *,
    where: ColumnElement[bool] | None = None,
) -> postgresql.Insert | sqlite.Insert:
    """INSERT … SELECT `values` FROM the batch [WHERE `where`]."""
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    # SQLite needs a WHERE in the SELECT to tell its ON CONFLICT from a join's ON.
    selected = select(*values.values()).where(
        BATCH.c.customer_id.is_not(None) if where is None else where
    )
    return insert(table).from_select(list(values), selected)
