import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from api.app import create_app as create_kizuki
from bench.baseline_app import create_app as create_baseline
from bench.load import LoadResult, percentile, read_latencies, write_latencies
from bench.query import AnswerError, check_answer, differences, request_body
from bench.report import Measured, combine, page_shape
from domain.db import AsyncSession
from domain.demo import load_demo_shop
from domain.ids import ShopId
from domain.jobs import JobRequest
from domain.settings import Settings
from domain.shop.models import Role
from domain.shop.service import create_api_key
from kizuki.events import InProcessEventBus


class DroppedJobs:
    async def send(self, requests: list[JobRequest]) -> None:
        raise AssertionError(f"a read sent jobs: {requests}")


def _page(customers: int) -> bytes:
    edges = [{"node": {"displayName": f"c{n}"}} for n in range(customers)]
    return json.dumps({"data": {"customers": {"edges": edges}}}).encode()


def test_differences_name_the_path_and_both_values() -> None:
    left = {"a": [1, {"b": 2, "c": None}], "d": "x"}
    right = {"a": [1, {"b": 3, "c": 0}], "e": "x"}

    assert list(differences(left, right)) == [
        "$.a[1].b: 2 against 3",
        "$.a[1].c: None against 0",
        "$.d: missing on the right",
        "$.e: missing on the left",
    ]
    assert list(differences(left, left)) == []


def test_differences_tell_true_from_one() -> None:
    assert list(differences({"a": True}, {"a": 1})) == ["$.a: True against 1"]


def test_check_answer_accepts_a_full_page_only() -> None:
    assert page_shape(check_answer(_page(3), page_size=3)).customers == 3
    with pytest.raises(AnswerError, match="expected 3 customers, got 2"):
        check_answer(_page(2), page_size=3)
    with pytest.raises(AnswerError, match="GraphQL errors"):
        check_answer(b'{"data": null, "errors": [{"message": "no"}]}')
    with pytest.raises(AnswerError, match="not JSON"):
        check_answer(b"<html>")


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))

    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7], 0.99) == 7
    assert percentile([], 0.5) == 0


@pytest.mark.postgres
async def test_baseline_answers_exactly_as_kizuki(
    is_postgres: bool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
) -> None:
    if not is_postgres:
        pytest.skip("the hand-written baseline reads PostgreSQL only (ARRAY, = ANY)")
    shop = await load_demo_shop(
        sessions, name="bench parity", customers=120, seed=7, as_of=datetime(2025, 6, 1, tzinfo=UTC)
    )
    async with sessions() as session:
        _, raw_key = await create_api_key(session, ShopId(shop.id), Role.ANALYST)
        await session.commit()

    @asynccontextmanager
    async def borrow() -> AsyncIterator[AsyncConnection]:
        yield connection

    kizuki = create_kizuki(
        settings, job_queue=DroppedJobs(), events=InProcessEventBus(), sessions=sessions
    )
    baseline = create_baseline(connect=borrow)
    headers = {"authorization": f"Bearer {raw_key}", "content-type": "application/json"}
    answers = []
    for app in (kizuki, baseline):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            response = await client.post("/graphql", content=request_body(), headers=headers)
            assert response.status_code == 200, response.text
            answers.append(check_answer(response.content))
            refused = await client.post(
                "/graphql", content=request_body(), headers={"authorization": "Bearer kzk_x_y"}
            )
            assert refused.status_code == 401

    assert list(differences(answers[0], answers[1])) == []
    shape = page_shape(answers[0])
    assert shape.customers == 50
    assert shape.orders > 50
    assert shape.lines >= shape.orders


def _round(requests: int, elapsed: float, cpu: float | None) -> Measured:
    load = LoadResult(
        requests=requests,
        errors=1,
        error_samples=["HTTP 500"],
        elapsed_seconds=elapsed,
        requests_per_second=requests / elapsed,
        p50_ms=0.0,
        p90_ms=0.0,
        p99_ms=0.0,
        max_ms=0.0,
        warmup_requests=10,
        driver_cpu_seconds=0.5,
        response_bytes=1000,
    )
    return Measured("kizuki", load, cpu, 0.2, 1.0, 0.5)


def test_rounds_combine_into_one_run(tmp_path: Path) -> None:
    path = tmp_path / "latencies"
    write_latencies(path, [3_000_000, 1_000_000, 2_000_000])
    latencies = [*read_latencies(path), 4_000_000]

    combined = combine([_round(3, 1.0, 2.0), _round(1, 1.0, None)], latencies)

    assert combined.load.requests == 4
    assert combined.load.requests_per_second == 2.0
    assert combined.load.p50_ms == 2.0
    assert combined.load.max_ms == 4.0
    assert combined.load.errors == 2
    assert combined.server_cpu_seconds is None
    assert combined.database_cpu_seconds == 0.4
    assert combined.cpu_ms_per_request is None
    assert combined.database_ms_per_request == pytest.approx(1000 * 0.4 / 24)
