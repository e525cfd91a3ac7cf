"""The one error tree of Kizuki's domain.

    DomainError                 expected, correctable: becomes a GraphQL `UserError`
    ├── NotFound                an ID unknown *to the caller's shop* (foreign IDs look the same)
    │   ├── ShopNotFound
    │   └── CustomerNotFound
    ├── Conflict                the request collides with stored state
    │   └── ShopNameTaken
    ├── InvalidInput            the request itself is wrong
    │   ├── InvalidGlobalId
    │   ├── InvalidPageSize
    │   └── ImportRejected
    └── PermissionDenied        the key's role does not allow the operation

Everything else (bugs, outages, authentication) is an exception, masked outside development.
Platform failures live in `domain.platforms`.
"""

from collections.abc import Sequence
from enum import StrEnum


class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_ID = "INVALID_ID"
    INVALID_PAGE_SIZE = "INVALID_PAGE_SIZE"
    NAME_TAKEN = "NAME_TAKEN"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    IMPORT_REJECTED = "IMPORT_REJECTED"


class DomainError(Exception):
    code: ErrorCode = ErrorCode.INVALID_INPUT

    def __init__(self, message: str, field: Sequence[str] | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field: tuple[str, ...] | None = (
            (field,) if isinstance(field, str) else tuple(field) if field is not None else None
        )


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class ShopNotFound(NotFound):
    pass


class CustomerNotFound(NotFound):
    pass


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class ShopNameTaken(Conflict):
    code = ErrorCode.NAME_TAKEN


class InvalidInput(DomainError):
    code = ErrorCode.INVALID_INPUT


class InvalidGlobalId(InvalidInput):
    code = ErrorCode.INVALID_ID


class InvalidPageSize(InvalidInput):
    code = ErrorCode.INVALID_PAGE_SIZE


class ImportRejected(InvalidInput):
    """A CSV import refused because rows are invalid; `problems` lists `file:line: column: …`."""

    code = ErrorCode.IMPORT_REJECTED

    def __init__(self, problems: Sequence[str]) -> None:
        shown = "\n".join(problems[:50])
        more = f"\n… and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) found; nothing imported:\n{shown}{more}")
        self.problems = list(problems)


class PermissionDenied(DomainError):
    code = ErrorCode.PERMISSION_DENIED
