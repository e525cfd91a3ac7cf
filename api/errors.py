"""The API's error model.

- A `DomainError` raised in a mutation becomes the `UserError` member of its result union
  (`DomainErrorHandler`), and the unit of work rolls back.
- Anything else is a top-level GraphQL error with `extensions.code`: FORBIDDEN for role
  checks, the domain code for a `DomainError` outside a mutation (a malformed ID, a bad page
  size), validation and limit codes before execution, INTERNAL_SERVER_ERROR for bugs.
- Outside development `MaskUnexpectedErrors` replaces a bug's message; it is logged with the
  request id, which the masked error carries so support can find it.
"""

import logging
import re
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.execution import StreamExecutionResult
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from domain.errors import DomainError, ErrorCode

logger = logging.getLogger("kizuki.api")

strawberry.enum(
    ErrorCode, name="UserErrorCode", description="What went wrong; clients switch on it."
)


@strawberry.type(description="An expected, correctable problem with a mutation's input.")
class UserError:
    code: ErrorCode
    message: str
    field: list[str] | None = strawberry.field(
        description='Path to the argument at fault, like ["input", "timezone"].'
    )


class Forbidden(Exception):
    """The caller's role does not allow this; shown as a top-level FORBIDDEN error."""


FORBIDDEN = "FORBIDDEN"
INTERNAL = "INTERNAL_SERVER_ERROR"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
_EXPECTED = (DomainError, Forbidden, GraphQLError)
_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)


class DomainErrorHandler(strawberry.ExceptionHandler[DomainError, UserError]):
    """The one place a `DomainError` becomes a `UserError` (and fails the unit of work)."""

    def handle(
        self, exception: DomainError, *, field: StrawberryField, info: strawberry.Info
    ) -> UserError:
        info.context.failed = True
        path = [to_camel_case(part) for part in exception.field or ()]
        # Domain functions name their own parameters; the client sent them inside `input`.
        if path and any(argument.python_name == "input" for argument in field.arguments):
            path.insert(0, "input")
        return UserError(code=exception.code, message=exception.message, field=path or None)


def is_unexpected(error: GraphQLError) -> bool:
    """A bug or outage rather than a refused request: its message is not for clients."""
    original = error.original_error
    return original is not None and not isinstance(original, _EXPECTED)


def error_code(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code.value
    if isinstance(original, Forbidden):
        return FORBIDDEN
    if is_unexpected(error):
        return INTERNAL
    if isinstance(error, GraphQLSyntaxError):
        if "tokens" in error.message:
            return QUERY_TOO_COMPLEX
        return "GRAPHQL_PARSE_FAILED"
    if error.path is None:
        return "GRAPHQL_VALIDATION_FAILED"
    return INTERNAL


def _shaped(error: GraphQLError) -> GraphQLError:
    extensions = dict(error.extensions or {})
    message = _SUGGESTION.sub("", error.message)
    if "code" in extensions and message == error.message:
        return error
    extensions.setdefault("code", error_code(error))
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=extensions,
    )


def _shape_result(result: object) -> None:
    errors: list[GraphQLError] | None = getattr(result, "errors", None)
    if errors:
        # New error objects: validation errors are cached and shared between requests.
        result.errors = [_shaped(error) for error in errors]  # type: ignore[attr-defined]


class ErrorCodes(SchemaExtension):
    """Gives every error an `extensions.code` and drops "Did you mean" suggestions."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None:
            _shape_result(result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        _shape_result(result)
        yield None


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's `MaskErrors` for bugs only; the masked error keeps its code and request id."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Unexpected error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        request_id = getattr(self.execution_context.context, "request_id", None)
        masked.extensions = {"code": INTERNAL, "requestId": request_id}
        return masked


def log_unexpected(errors: list[GraphQLError], request_id: str | None) -> None:
    for error in errors:
        if is_unexpected(error):
            logger.error(
                "unexpected error at %s (request %s): %s",
                ".".join(str(part) for part in error.path or ()) or "operation",
                request_id,
                error.original_error,
                exc_info=error.original_error,
                extra={"request_id": request_id},
            )
