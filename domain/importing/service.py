"""`import_directory`: the CSV import of docs/import-format.md as one unit of work."""

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.errors import ImportRejected, InvalidInput
from domain.ids import ShopId
from domain.importing import layout
from domain.importing.reader import CsvSource, FileProblem
from domain.importing.rejections import Rejections
from domain.importing.run import ImportRun
from domain.ingest import Counts
from domain.shop.service import require_shop

# Problems an import report carries; the rejected file has every rejected row.
REPORTED_PROBLEMS = 100


@dataclass(frozen=True, slots=True)
class ImportReport:
    customers: Counts
    orders: Counts
    # Valid rows of order_lines.csv (lines are stored with their orders).
    order_lines: int
    subscriptions: Counts
    subscription_events: Counts
    rows_read: int
    rows_rejected: int
    # The first problems found (all of them are in the rejected file, when one was asked for).
    problems: tuple[str, ...]
    problem_count: int
    rejected_path: Path | None
    # *.csv files in the directory that are not part of the format.
    ignored_files: tuple[str, ...]

    def summary(self) -> str:
        """A few lines for a terminal."""

        def counts(name: str, value: Counts) -> str:
            return (
                f"{name:<20} {value.inserted:>9} new {value.updated:>9} updated "
                f"{value.unchanged:>9} unchanged"
            )

        lines = [
            counts("customers", self.customers),
            counts("orders", self.orders),
            f"{'order lines':<20} {self.order_lines:>9} read",
            counts("subscriptions", self.subscriptions),
            counts("subscription events", self.subscription_events),
            f"{self.rows_read} rows read, {self.rows_rejected} rejected",
        ]
        lines.extend(self.problems[:20])
        if self.problem_count > min(len(self.problems), 20):
            lines.append(f"… {self.problem_count - min(len(self.problems), 20)} more problems")
        if self.rejected_path is not None:
            lines.append(f"rejected rows written to {self.rejected_path}")
        if self.ignored_files:
            lines.append(f"ignored (not part of the format): {', '.join(self.ignored_files)}")
        return "\n".join(lines)


def _sources(directory: Path) -> tuple[dict[str, tuple[CsvSource, list[str]]], tuple[str, ...]]:
    """The format's files present in `directory` with their headers, after checking them."""
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is not a directory", field="directory")
    known = {spec.name: spec for spec in layout.FILES}
    present = {path.name: path for path in directory.iterdir() if path.is_file()}
    ignored = tuple(sorted(name for name in present if name.endswith(".csv") and name not in known))
    for name in sorted(layout.REQUIRED_FILES - present.keys()):
        raise InvalidInput(f"{directory} has no {name} (the one required file)", field="directory")
    sources: dict[str, tuple[CsvSource, list[str]]] = {}
    problems: list[str] = []
    for spec in layout.FILES:
        if spec.name not in present:
            continue
        source = CsvSource(present[spec.name])
        try:
            header = source.header()
        except FileProblem as problem:
            problems.append(problem.problem)
            continue
        problems.extend(_header_problems(spec, header))
        sources[spec.name] = (source, header)
    if problems:
        raise ImportRejected(problems)
    return sources, ignored


def _header_problems(spec: layout.FileSpec, header: list[str]) -> list[str]:
    problems = [
        f'{spec.name}:1: header: missing required column "{column}"'
        for column in spec.required
        if column not in header
    ]
    seen: set[str] = set()
    for column in header:
        if column in seen:
            problems.append(f'{spec.name}:1: header: column "{column}" appears twice')
        elif column not in spec.columns:
            expected = ", ".join(spec.columns)
            problems.append(
                f'{spec.name}:1: header: unknown column "{column}" (expected: {expected})'
            )
        seen.add(column)
    return problems


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(f"unknown time zone {name!r}", field="timezone") from error


async def import_directory(
    sessions: async_sessionmaker[AsyncSession],
    shop_id: ShopId,
    directory: Path,
    *,
    timezone: str | None = None,
    skip_invalid: bool = False,
    rejected_path: Path | None = None,
    batch_size: int = 5000,
) -> ImportReport:
    """Import the CSV files in `directory` into the shop, all or nothing, idempotently.

    The import is a unit of work of its own, called from a composition root (the CLI): it
    opens one session and commits once at the end, so a failure leaves nothing behind.
    Plain dates mean 00:00 in `timezone` (default: the shop's zone). Any invalid row rejects
    the whole import (`ImportRejected`, problems as `file:line: column: problem`) unless
    `skip_invalid`, which imports the valid rows. Rejected rows go to `rejected_path` when
    given. Files are streamed in chunks of `batch_size` rows: memory does not grow with them.
    """
    if batch_size < 1:
        raise InvalidInput("batch_size must be at least 1", field="batch_size")
    sources, ignored = _sources(directory)
    columns = ["mall", *(column for spec in layout.FILES for column in spec.columns)]
    async with sessions() as session:
        shop = await require_shop(session, shop_id)
        zone = _zone(timezone or shop.timezone)
        rejections = Rejections(columns, rejected_path)
        run = ImportRun(
            session,
            ShopId(shop.id),
            zone,
            sources,
            rejections,
            skip_invalid=skip_invalid,
            batch_size=batch_size,
        )
        fatal = False
        try:
            await run.execute()
        except FileProblem as problem:
            rejections.problem(problem.problem)
            fatal = True
        finally:
            rejections.close()
        if fatal or (rejections.total and not skip_invalid):
            await session.rollback()
            raise ImportRejected(rejections.problems)
        await session.commit()
    tally = run.tally
    return ImportReport(
        customers=tally.customers,
        orders=tally.orders,
        order_lines=tally.order_lines,
        subscriptions=tally.subscriptions,
        subscription_events=tally.subscription_events,
        rows_read=tally.rows_read,
        rows_rejected=rejections.rows,
        problems=tuple(rejections.problems[:REPORTED_PROBLEMS]),
        problem_count=rejections.total,
        rejected_path=rejections.path,
        ignored_files=ignored,
    )
