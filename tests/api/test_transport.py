from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette

from api.app import create_app
from domain.db import AsyncSession
from domain.settings import Settings
from domain.shop.models import ApiKey, Role
from kizuki.events import InProcessEventBus
from tests.api.conftest import GraphQLClient, RecordingJobQueue, serving
from tests.api.world import ShopWorld

SHOP = "{ shop { name } }"


async def test_missing_key_is_401_with_a_bearer_challenge(client: GraphQLClient) -> None:
    response = await client.post(SHOP, key=None)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "errors": [
            {
                "message": "an API key is required: send Authorization: Bearer <key>",
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ]
    }


@pytest.mark.parametrize(
    "header",
    ["Bearer kzk_nothex_secret", "Bearer ", "Basic dXNlcjpwYXNz", "kzk_abc", "Bearer  x y"],
)
async def test_malformed_or_unknown_keys_are_401(
    client: GraphQLClient, shop_a: ShopWorld, header: str
) -> None:
    response = await client.http.post(
        "/graphql", json={"query": SHOP}, headers={"Authorization": header}
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_a_tampered_key_is_401(client: GraphQLClient, shop_a: ShopWorld) -> None:
    key = shop_a.admin
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")

    response = await client.post(SHOP, key=tampered)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_a_revoked_key_is_401(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    key = await session.get(ApiKey, (shop_a.shop.id, shop_a.key_ids[Role.ANALYST]))
    assert key is not None
    key.revoked_at = datetime.now(UTC)
    await session.commit()

    assert (await client.post(SHOP, key=shop_a.keys[Role.ANALYST])).status_code == 401
    assert (await client.post(SHOP, key=shop_a.admin)).status_code == 200


async def test_queries_over_get_are_refused(client: GraphQLClient, shop_a: ShopWorld) -> None:
    response = await client.http.get(
        "/graphql", params={"query": SHOP}, headers={"Authorization": f"Bearer {shop_a.admin}"}
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()


async def test_graphiql_is_served_in_development_with_the_given_headers(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: RecordingJobQueue,
    events: InProcessEventBus,
) -> None:
    app = create_app(
        settings,
        sessions=sessions,
        job_queue=jobs,
        events=events,
        graphiql_headers={"Authorization": "Bearer kzk_demo</script>"},
    )
    async with serving(app) as client:
        response = await client.http.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    assert '{"Authorization": "Bearer kzk_demo\\u003c/script\\u003e"}' in response.text
    assert "wsConnectionParams: defaultHeaders" in response.text


async def test_graphiql_is_absent_in_production(
    make_app: Callable[[Settings], Starlette], production_settings: Settings
) -> None:
    async with serving(make_app(production_settings)) as client:
        response = await client.http.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


async def test_other_methods_are_405(client: GraphQLClient) -> None:
    assert (await client.http.put("/graphql", json={"query": SHOP})).status_code == 405


async def test_batches_are_refused(client: GraphQLClient, shop_a: ShopWorld) -> None:
    response = await client.http.post(
        "/graphql",
        json=[{"query": SHOP}, {"query": SHOP}],
        headers={"Authorization": f"Bearer {shop_a.admin}"},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Batching is not enabled"


async def test_subscriptions_over_post_are_refused(
    client: GraphQLClient, shop_a: ShopWorld
) -> None:
    response = await client.post("subscription { events { topic } }", key=shop_a.admin)

    assert response.status_code == 400
    assert "graphql-transport-ws" in response.json()["errors"][0]["message"]


async def test_a_sane_request_id_is_echoed_and_a_missing_one_generated(
    client: GraphQLClient, shop_a: ShopWorld
) -> None:
    given = await client.post(SHOP, key=shop_a.admin, headers={"X-Request-ID": "req-42.a"})
    missing = await client.post(SHOP, key=None)
    insane = await client.post(SHOP, key=None, headers={"X-Request-ID": "bad id\twith spaces"})

    assert given.headers["x-request-id"] == "req-42.a"
    assert len(missing.headers["x-request-id"]) == 32
    assert insane.headers["x-request-id"] != "bad id\twith spaces"


async def test_healthz_needs_no_key(client: GraphQLClient) -> None:
    response = await client.http.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_checks_the_database(client: GraphQLClient) -> None:
    response = await client.http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_readyz_is_503_naming_an_unreachable_redis(
    make_app: Callable[[Settings], Starlette], settings: Settings
) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    async with serving(make_app(down)) as client:
        response = await client.http.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failed")


@pytest.mark.redis
async def test_readyz_pings_a_live_redis(
    make_app: Callable[[Settings], Starlette], settings: Settings, redis_available: str
) -> None:
    live = settings.model_copy(update={"redis_url": redis_available})
    async with serving(make_app(live)) as client:
        response = await client.http.get("/readyz")

    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_without_sessions_the_app_owns_an_engine_for_its_lifespan(
    settings: Settings, jobs: RecordingJobQueue, events: InProcessEventBus
) -> None:
    app = create_app(settings, job_queue=jobs, events=events)

    async with serving(app) as client:
        ready = await client.http.get("/readyz")
        refused = await client.post(SHOP, key="kzk_00000000000000000000000000000000_nope")

    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert refused.status_code == 401
