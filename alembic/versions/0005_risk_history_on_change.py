"""risk history written on a change

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 03:30:00.000000

Risk history gets a row when a customer's band changes or their probability moves at least
`HISTORY_STEP` from their last row, instead of a row per customer per night. The current
score keeps that last row's probability; until now every run wrote history beside the current
score, so the last row's probability is the current one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('risk_score', sa.Column('recorded_probability', sa.Float(), nullable=True))
    op.execute('UPDATE risk_score SET recorded_probability = probability')


def downgrade() -> None:
    with op.batch_alter_table('risk_score') as batch_op:
        batch_op.drop_column('recorded_probability')
