"""The `kizuki` command: the composition root for humans.

Builds settings, engines, Redis clients, the event bus and the job queue, and hands them to
the API (`serve`), the arq worker (`worker`) or a domain entry point (`import`, `demo`, …).
"""

import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import select

from api.app import create_app
from api.relay import decode_id_of, encode_id
from domain.connection.service import ConnectionRow
from domain.db import AsyncSession, create_engine, session_factory
from domain.demo.files import write_import_files
from domain.demo.service import DEFAULT_SEED, load_demo_shop
from domain.errors import DomainError, ImportRejected, InvalidGlobalId
from domain.ids import ShopId
from domain.importing.service import ImportReport, import_directory
from domain.risk.export import export_scores
from domain.risk.service import recompute_shop_risk
from domain.settings import Settings
from domain.shop.models import Role, Shop
from domain.shop.service import create_api_key, create_shop
from kizuki.mall_sync import ConnectionSync, list_shop_connections, sync_shop
from kizuki.process import run as run_async
from kizuki.process import tune_garbage_collector
from kizuki.runtime import open_runtime
from workers.main import run_worker

app = typer.Typer(help="Kizuki: notice silent churn, act first.", no_args_is_help=True)
shop_app = typer.Typer(help="Manage shops (tenants).", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(shop_app, name="shop")
app.add_typer(apikey_app, name="apikey")

ROOT = Path(__file__).resolve().parent.parent
DEMO_SHOP = "Kizuki Demo Skincare"
T = TypeVar("T")


def main() -> None:
    tune_garbage_collector()
    app()


def _settings() -> Settings:
    return Settings()


def migrate_database(database_url: str) -> None:
    """Bring the database to the newest migration (creates a SQLite file when needed)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def parse_shop_id(value: str) -> ShopId:
    """A shop ID from its global ID (as `shop create` prints it) or its raw UUID."""
    try:
        return ShopId(uuid.UUID(value))
    except ValueError:
        pass
    try:
        return ShopId(decode_id_of(value, "Shop", field="shop"))
    except InvalidGlobalId:
        pass
    raise typer.BadParameter(f"{value!r} is not a shop ID", param_hint="--shop")


async def _with_sessions(
    settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
) -> T:
    engine: AsyncEngine = create_engine(settings.database_url, pool_size=2)
    try:
        return await work(session_factory(engine))
    finally:
        await engine.dispose()


def _run(coroutine: Coroutine[object, object, T]) -> T:
    try:
        return run_async(coroutine)
    except DomainError as error:
        typer.secho(f"error: {error.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error


@app.command()
def migrate() -> None:
    """Apply all database migrations."""
    settings = _settings()
    migrate_database(settings.database_url)
    typer.echo("database is at the newest migration")


@shop_app.command("create")
def shop_create(
    name: str,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the shop")] = "Asia/Tokyo",
) -> None:
    """Create a shop and print its global ID."""
    settings = _settings()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> uuid.UUID:
        async with sessions() as session:
            shop = await create_shop(session, name, timezone=timezone)
            await session.commit()
            return shop.id

    shop_id = _run(_with_sessions(settings, work))
    typer.echo(encode_id("Shop", shop_id))


@apikey_app.command("create")
def apikey_create(
    shop: Annotated[str, typer.Option("--shop", help="shop global ID or UUID")],
    role: Annotated[Role, typer.Option("--role", help="admin, analyst or partner")],
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    settings = _settings()
    shop_id = parse_shop_id(shop)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with sessions() as session:
            _, raw_key = await create_api_key(session, shop_id, role, name=name)
            await session.commit()
            return raw_key

    typer.echo(_run(_with_sessions(settings, work)))


@app.command("import")
def import_(
    directory: Annotated[Path, typer.Argument(help="folder with the CSV files")],
    shop: Annotated[str, typer.Option("--shop", help="shop global ID or UUID")],
    skip_invalid: Annotated[
        bool, typer.Option(help="import the valid rows; write the rejected ones to --rejected")
    ] = False,
    rejected: Annotated[
        Path | None, typer.Option(help="where rejected rows go (default DIR/rejected.csv)")
    ] = None,
) -> None:
    """Import customers, orders and subscriptions in the CSV format of docs/import-format.md."""
    settings = _settings()
    shop_id = parse_shop_id(shop)
    if skip_invalid and rejected is None:
        rejected = directory / "rejected.csv"

    async def work(sessions: async_sessionmaker[AsyncSession]) -> ImportReport:
        return await import_directory(
            sessions, shop_id, directory, skip_invalid=skip_invalid, rejected_path=rejected
        )

    try:
        report = run_async(_with_sessions(settings, work))
    except ImportRejected as rejection:
        typer.secho(rejection.message, fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from rejection
    except DomainError as error:
        typer.secho(f"error: {error.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    typer.echo(report.summary())


@app.command()
def score(
    shop: Annotated[str, typer.Option("--shop", help="shop global ID or UUID")],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write")],
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="score as of the start of this day (shop's zone), from data before it",
        ),
    ] = None,
    horizon_days: Annotated[
        int | None, typer.Option("--horizon-days", min=1, help="default: the shop's horizon")
    ] = None,
) -> None:
    """Write each customer's risk as of a date: external ID, mall, probability, band, reason."""
    settings = _settings()
    shop_id = parse_shop_id(shop)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> int:
        return await export_scores(
            sessions,
            shop_id,
            out=out,
            as_of=as_of.date() if as_of is not None else None,
            horizon_days=horizon_days,
        )

    written = _run(_with_sessions(settings, work))
    typer.echo(f"wrote {written} customers to {out}")


def parse_connection_id(value: str) -> uuid.UUID:
    """A connection ID from its global ID (as `connections` prints it) or its raw UUID."""
    try:
        return uuid.UUID(value)
    except ValueError:
        pass
    try:
        return decode_id_of(value, "StoreConnection", field="connection")
    except InvalidGlobalId:
        pass
    raise typer.BadParameter(f"{value!r} is not a connection ID", param_hint="--connection")


def _connection_line(row: ConnectionRow) -> str:
    last = row.last_sync_at.isoformat(timespec="seconds") if row.last_sync_at else "never"
    line = (
        f"{encode_id('StoreConnection', row.id)}  {row.platform:<8} {row.status.value:<17} "
        f"{row.external_account_id}  last sync: {last}"
    )
    return f"{line}  last error: {row.last_error}" if row.last_error else line


@app.command("connections")
def connections_(
    shop: Annotated[str, typer.Option("--shop", help="shop global ID or UUID")],
) -> None:
    """List the shop's mall connections: ID, mall, status, account, last sync (no credentials)."""
    settings = _settings()
    rows = _run(list_shop_connections(settings, parse_shop_id(shop)))
    if not rows:
        typer.echo("no connections")
    for row in rows:
        typer.echo(_connection_line(row))


def _sync_lines(result: ConnectionSync) -> list[str]:
    row = result.connection
    head = f"{encode_id('StoreConnection', row.id)} {row.platform} {row.external_account_id}:"
    lines = [f"{head} {result.note}"] if result.note else []
    for run in result.runs:
        counts = run.counts
        lines.append(
            f"{head} {run.status.value}, {counts.get('pages', 0)} pages, "
            f"orders {counts.get('orders_seen', 0)} seen {counts.get('orders_inserted', 0)} new "
            f"{counts.get('orders_updated', 0)} updated, customers "
            f"{counts.get('customers_inserted', 0)} new {counts.get('customers_updated', 0)} "
            f"updated, subscriptions {counts.get('subscriptions_inserted', 0)} new "
            f"{counts.get('subscriptions_updated', 0)} updated, "
            f"{counts.get('rejected', 0)} rejected"
        )
        lines += [f"{head}   {error}" for error in run.errors]
    return lines


@app.command("sync")
def sync_(
    shop: Annotated[str, typer.Option("--shop", help="shop global ID or UUID")],
    connection: Annotated[
        str | None, typer.Option("--connection", help="only this connection (global ID or UUID)")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z"],
            help="re-read from this day (UTC) or time instead of the stored cursor",
        ),
    ] = None,
) -> None:
    """Sync the shop's active mall connections now, in this process, and print the counts."""
    settings = _settings()
    shop_id = parse_shop_id(shop)
    connection_id = parse_connection_id(connection) if connection is not None else None
    moment = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    results = _run(sync_shop(settings, shop_id, connection_id=connection_id, since=moment))
    if not results:
        typer.echo("no active mall connections")
    for result in results:
        for line in _sync_lines(result):
            typer.echo(line)


@app.command("demo-data")
def demo_data(
    directory: Annotated[Path, typer.Argument(help="folder to write the CSV files into")],
    customers: Annotated[int, typer.Option(min=1, help="number of customers")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same files")] = DEFAULT_SEED,
) -> None:
    """Write a generated demo shop in the import format (any size, streamed)."""
    as_of = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = write_import_files(directory, seed, customers=customers, as_of=as_of)
    typer.echo(
        f"wrote {counts.customers} customers, {counts.orders} orders, "
        f"{counts.order_lines} order lines, {counts.subscriptions} subscriptions and "
        f"{counts.subscription_events} subscription events to {directory}"
    )


async def _prepare_demo(settings: Settings, customers: int) -> tuple[uuid.UUID, str, bool]:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> tuple[uuid.UUID, str, bool]:
        async with sessions() as session:
            existing = (await session.exec(select(Shop).where(Shop.name == DEMO_SHOP))).first()
        created = existing is None
        shop = existing or await load_demo_shop(sessions, name=DEMO_SHOP, customers=customers)
        # Signs, risk and reasons are there from the first query on.
        await recompute_shop_risk(sessions, ShopId(shop.id))
        async with sessions() as session:
            _, raw_key = await create_api_key(
                session, ShopId(shop.id), Role.ADMIN, name="demo admin"
            )
            await session.commit()
        return shop.id, raw_key, created

    return await _with_sessions(settings, work)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to bind")] = 8000,
    customers: Annotated[int, typer.Option(min=10, help="demo customers to generate")] = 2000,
) -> None:
    """Migrate, load the demo shop (once), print an admin key and serve GraphiQL."""
    settings = _settings()
    _configure_logging(settings)
    migrate_database(settings.database_url)
    typer.echo("preparing the demo shop …")
    shop_id, raw_key, created = run_async(_prepare_demo(settings, customers))
    state = "loaded" if created else "already there"
    typer.echo(f"demo shop {encode_id('Shop', shop_id)} ({state})")
    typer.echo(f"admin API key: {raw_key}")
    typer.echo(f"GraphiQL:      http://{host}:{port}/graphql  (the key is pre-filled)")
    headers = {"Authorization": f"Bearer {raw_key}"}
    run_async(_serve(settings, host, port, graphiql_headers=headers))


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


async def _serve(
    settings: Settings, host: str, port: int, graphiql_headers: Mapping[str, str] | None = None
) -> None:
    async with open_runtime(settings) as runtime:
        web_app = create_app(
            settings,
            sessions=runtime.sessions,
            job_queue=runtime.job_queue,
            events=runtime.events,
            graphiql_headers=graphiql_headers,
            platforms=runtime.platforms,
        )
        config = uvicorn.Config(
            web_app,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            proxy_headers=True,
            lifespan="on",
        )
        await uvicorn.Server(config).serve()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to bind")] = 8000,
) -> None:
    """Serve the GraphQL API (jobs and events in-process when no Redis is configured)."""
    settings = _settings()
    _configure_logging(settings)
    run_async(_serve(settings, host, port))


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="exit when the queue is empty")] = False,
) -> None:
    """Run an arq worker for background jobs (needs KIZUKI_REDIS_URL)."""
    settings = _settings()
    if not settings.redis_url:
        typer.secho(
            "error: KIZUKI_REDIS_URL is not set; the embedded server runs jobs itself",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    _configure_logging(settings)
    run_worker(settings, burst=burst)


if __name__ == "__main__":
    main()
