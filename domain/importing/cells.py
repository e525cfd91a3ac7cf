"""Typed reads of one CSV row's cells; each bad cell adds a `column: problem` and reads as None."""

import re
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo

from domain.importing.currencies import ISO_4217
from domain.ingest.contact import e164, is_email, normalise_email
from domain.platforms import Platform

E = TypeVar("E", bound=StrEnum)

_INTEGER = re.compile(r"[+-]?[0-9]+")
MAX_ID_LENGTH = 200
MALLS = tuple(platform.value for platform in Platform)


class Cells:
    """One row by column name; blank cells are None."""

    __slots__ = ("_values", "columns", "problems", "zone")

    def __init__(self, header: list[str], values: list[str], zone: ZoneInfo) -> None:
        self.columns = header
        self._values = dict(zip(header, values, strict=True))
        self.zone = zone
        self.problems: list[tuple[str, str]] = []

    def problem(self, column: str, message: str) -> None:
        self.problems.append((column, message))

    def text(self, column: str) -> str | None:
        value = self._values.get(column)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def required(self, column: str) -> str:
        """The text of a required cell; "" (with a problem) when blank."""
        value = self.text(column)
        if value is None:
            self.problem(column, "required value is missing")
            return ""
        return value

    def identifier(self, column: str, *, required: bool = True) -> str | None:
        value = self.required(column) if required else self.text(column)
        if value and len(value) > MAX_ID_LENGTH:
            self.problem(column, f'"{value[:20]}…" is longer than {MAX_ID_LENGTH} characters')
        return value or None

    def integer(self, column: str, *, required: bool = False, positive: bool = False) -> int | None:
        value = self.required(column) if required else self.text(column)
        if not value:
            return None
        if not _INTEGER.fullmatch(value):
            self.problem(column, f'"{value}" is not an integer')
            return None
        number = int(value)
        if positive and number <= 0:
            self.problem(column, f'"{value}" must be positive')
            return None
        if number < 0:
            self.problem(column, f'"{value}" must not be negative')
            return None
        return number

    def time(self, column: str, *, required: bool = False) -> datetime | None:
        """An ISO 8601 time with an offset, or a date meaning 00:00 in the shop's zone; UTC."""
        value = self.required(column) if required else self.text(column)
        if not value:
            return None
        try:
            if "T" not in value and ":" not in value and " " not in value:
                day = date.fromisoformat(value)
                return datetime.combine(day, time(), tzinfo=self.zone).astimezone(UTC)
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.problem(column, f'"{value}" is not an ISO 8601 date or time')
            return None
        if moment.tzinfo is None:
            self.problem(
                column,
                f'"{value}" has no UTC offset; add one (e.g. {value}+09:00) or give a plain date',
            )
            return None
        return moment.astimezone(UTC)

    def date(self, column: str) -> date | None:
        value = self.text(column)
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.problem(column, f'"{value}" is not a date (YYYY-MM-DD)')
            return None

    def choice(self, column: str, kind: type[E], default: E) -> E:
        value = self.text(column)
        if value is None:
            return default
        try:
            return kind(value.lower())
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            self.problem(column, f'"{value}" is not one of {allowed}')
            return default

    def mall(self) -> str:
        value = self.required("mall").lower()
        if value and value not in MALLS:
            self.problem("mall", f'"{value}" is not a known mall ({", ".join(MALLS)})')
        return value

    def currency(self) -> str:
        value = self.text("currency")
        if value is None:
            return "JPY"
        if value.upper() not in ISO_4217:
            self.problem("currency", f'"{value}" is not an ISO 4217 currency code')
            return "JPY"
        return value.upper()

    def email(self) -> str | None:
        value = self.text("email")
        normalised = normalise_email(value)
        if value and (normalised is None or not is_email(normalised.address)):
            self.problem("email", f'"{value}" is not an email address')
            return None
        return value

    def phone(self) -> str | None:
        value = self.text("phone")
        if value and e164(value) is None:
            self.problem("phone", f'"{value}" is not a phone number (Japanese or +country code)')
            return None
        return value
