"""The problems an import found, and the file of rejected rows (original columns + `error`)."""

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import Writer

# Problems kept word for word; beyond this only their number grows (memory stays flat).
KEPT_PROBLEMS = 10_000


class Rejections:
    """Collects `file:line: column: problem` lines and writes rejected rows as they come.

    The rejected file has the columns of every input file side by side (blank where a row's
    own file has no such column), after `source_file` and `source_line`, and `error` last. It is
    written even when nothing is rejected, so no stale file of an earlier run remains.
    """

    def __init__(self, columns: Sequence[str], path: Path | None) -> None:
        self._columns = list(dict.fromkeys(columns))
        self.path = path
        self._handle: IO[str] | None = None
        self._writer: Writer | None = None
        if path is not None:
            self._handle = path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle, lineterminator="\n")
            self._writer.writerow(["source_file", "source_line", *self._columns, "error"])
        self.problems: list[str] = []
        self.total = 0
        self.rows = 0

    def problem(self, text: str) -> None:
        self.total += 1
        if len(self.problems) < KEPT_PROBLEMS:
            self.problems.append(text)

    def reject(
        self,
        file: str,
        line: int,
        header: Sequence[str],
        values: Sequence[str],
        problems: Sequence[tuple[str, str]],
    ) -> None:
        """Record one invalid row: each problem, and the row itself in the rejected file."""
        self.rows += 1
        for column, message in problems:
            self.problem(f"{file}:{line}: {column}: {message}")
        if self._writer is None:
            return
        cells = dict(zip(header, values, strict=False))
        error = "; ".join(f"{column}: {message}" for column, message in problems)
        self._writer.writerow(
            [file, line, *(cells.get(column, "") for column in self._columns), error]
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
