"""What the read services share: Core rows on the session's connection, prebuilt statements.

Reads build each statement once (per SQL dialect and page shape) with named parameters, and
run it with the values: SQLAlchemy then finds the compiled form without walking the statement,
and PostgreSQL reuses the prepared statement. Every statement names the tenant as `SHOP_ID`.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Executable, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

from domain.db import AsyncSession

# The parameter every tenant statement is scoped by.
SHOP_ID = "shop_id"


def shop_of(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """`column = :shop_id`: the tenant condition of a prebuilt statement."""
    return column == bindparam(SHOP_ID)


def among(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the values of parameter `name` (a list).

    On PostgreSQL `= ANY(:name)`: one array parameter, so one prepared statement whatever the
    count, and no list to expand per execution. Elsewhere `IN (…)`, expanded per execution.
    """
    if dialect == "postgresql":
        values: BindParameter[Any] = bindparam(name, type_=ARRAY(column.type))
        return column == any_(values)
    return column.in_(bindparam(name, expanding=True))


def dialect_of(session: AsyncSession) -> str:
    """The SQL dialect the session talks (`postgresql`, `sqlite`)."""
    if session.bind is None:
        raise RuntimeError("a read needs a session bound to an engine or a connection")
    return session.bind.dialect.name


async def rows(
    session: AsyncSession, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> Sequence[Any]:
    """All rows of a Core statement, on the session's own connection and transaction."""
    connection = await session.connection()
    found: Sequence[Any] = (await connection.execute(statement, parameters)).all()
    return found
