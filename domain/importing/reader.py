"""Streaming a CSV file row by row with the line each row starts on; UTF-8 only (BOM allowed)."""

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Quoted free text (titles, reasons) may be long; the csv module's default limit is 128 KiB.
csv.field_size_limit(1 << 20)


class FileProblem(Exception):
    """A file cannot be read further: not UTF-8, malformed quoting, or a bad header."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class SourceRow:
    line: int
    values: list[str]


def _decoded_lines(handle: BinaryIO, name: str) -> Iterator[str]:
    # Decoding line by line names the line of a bad byte; a UTF-8 newline byte is never part
    # of a multi-byte character, so splitting bytes on it is safe.
    for number, raw in enumerate(handle, start=1):
        data = (
            raw[len(codecs.BOM_UTF8) :] if number == 1 and raw.startswith(codecs.BOM_UTF8) else raw
        )
        try:
            yield data.decode("utf-8")
        except UnicodeDecodeError as error:
            byte = data[error.start]
            raise FileProblem(
                f"{name}:{number}: encoding: byte 0x{byte:02X} at position {error.start + 1} is "
                "not UTF-8; save the file as UTF-8 (Shift_JIS/CP932 is not read)"
            ) from error


class CsvSource:
    """One import file: its normalised header, then its rows with their starting lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name

    def header(self) -> list[str]:
        with self.path.open("rb") as handle:
            for row in self._rows(handle):
                return [cell.strip().lower() for cell in row.values]
        raise FileProblem(f"{self.name}:1: header: the file is empty")

    def rows(self) -> Iterator[SourceRow]:
        """Data rows (the header skipped); blank lines are skipped too."""
        with self.path.open("rb") as handle:
            rows = self._rows(handle)
            next(rows, None)
            yield from rows

    def _rows(self, handle: BinaryIO) -> Iterator[SourceRow]:
        reader = csv.reader(_decoded_lines(handle, self.name), strict=True)
        start = 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise FileProblem(f"{self.name}:{reader.line_num}: row: {error}") from error
            if any(values):
                yield SourceRow(start, values)
            start = reader.line_num + 1
