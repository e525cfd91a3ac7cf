"""The one error tree of Kizuki's domain.

    DomainError                 expected, correctable: becomes a GraphQL `UserError`
    ├── NotFound                an ID unknown *to the caller's shop* (foreign IDs look the same)
    │   ├── ShopNotFound
    │   ├── CustomerNotFound
    │   └── MergeNotFound
    ├── Conflict                the request collides with stored state
    │   ├── ShopNameTaken
    │   ├── CustomerAlreadyMerged
    │   ├── MergeAlreadyUndone
    │   └── MergeBlocked
    ├── InvalidInput            the request itself is wrong
    │   ├── InvalidGlobalId
    │   ├── InvalidPageSize
    │   ├── MergeWithItself
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
    SAME_CUSTOMER = "SAME_CUSTOMER"
    ALREADY_MERGED = "ALREADY_MERGED"
    ALREADY_UNMERGED = "ALREADY_UNMERGED"
    MERGE_BLOCKED = "MERGE_BLOCKED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    PLATFORM_UNAVAILABLE = "PLATFORM_UNAVAILABLE"
    ALREADY_CONNECTED = "ALREADY_CONNECTED"
    CONNECTION_INACTIVE = "CONNECTION_INACTIVE"


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


class MergeNotFound(NotFound):
    pass


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class ShopNameTaken(Conflict):
    code = ErrorCode.NAME_TAKEN


class CustomerAlreadyMerged(Conflict):
    """The customer was absorbed into another one; its id names nobody until an unmerge."""

    code = ErrorCode.ALREADY_MERGED


class MergeAlreadyUndone(Conflict):
    code = ErrorCode.ALREADY_UNMERGED


class MergeBlocked(Conflict):
    """Both customers hold something only one customer may (an enrollment in one campaign
    cycle): a merge could not be undone exactly."""

    code = ErrorCode.MERGE_BLOCKED


class InvalidInput(DomainError):
    code = ErrorCode.INVALID_INPUT


class InvalidGlobalId(InvalidInput):
    code = ErrorCode.INVALID_ID


class InvalidPageSize(InvalidInput):
    code = ErrorCode.INVALID_PAGE_SIZE


class MergeWithItself(InvalidInput):
    code = ErrorCode.SAME_CUSTOMER


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
