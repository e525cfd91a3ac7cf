"""current scores keep the signs they show as bits

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:00:00.000000

Sign filters and the risk distribution tested every score's JSON reasons (a JSON path per
row and sign); the score now also keeps the signs its reasons show (strength at least 0.5)
as one small integer, bit 0 interval, 1 basket, 2 subscription. Existing scores are filled
from their reasons.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNS = (('interval', 1), ('basket', 2), ('subscription', 4))
SHOWN_AT = 0.5


def fill(dialect: str) -> str:
    """The UPDATE that sets every score's bits from its stored reasons, on `dialect`."""
    return _postgres_fill() if dialect == 'postgresql' else _sqlite_fill()


def _postgres_fill() -> str:
    bits = ' | '.join(
        f"""(CASE WHEN jsonb_path_exists(reasons, '$[*] ? (@.sign == "{name}" """
        f"""&& @.strength >= {SHOWN_AT})') THEN {bit} ELSE 0 END)"""
        for name, bit in SIGNS
    )
    return f"UPDATE risk_score SET shown_signs = {bits} WHERE reasons <> '[]'::jsonb"


def _sqlite_fill() -> str:
    cases = ' '.join(f"WHEN '{name}' THEN {bit}" for name, bit in SIGNS)
    return (
        'UPDATE risk_score SET shown_signs = (SELECT coalesce(sum(DISTINCT CASE '
        f"json_extract(value, '$.sign') {cases} END), 0) FROM json_each(risk_score.reasons) "
        f"WHERE json_extract(value, '$.strength') >= {SHOWN_AT})"
    )


def upgrade() -> None:
    op.add_column(
        'risk_score',
        sa.Column('shown_signs', sa.SmallInteger(), nullable=False, server_default='0'),
    )
    op.execute(fill(op.get_bind().dialect.name))
    with op.batch_alter_table('risk_score') as batch_op:
        batch_op.alter_column('shown_signs', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('risk_score') as batch_op:
        batch_op.drop_column('shown_signs')
