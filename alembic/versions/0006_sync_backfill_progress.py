"""backfill progress on connections and sync runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 03:00:00.000000

The platforms estimate how much of the history a backfill has read; syncs now keep that
share (0 to 1) on the connection and on each run of the backfill, so staff can follow it.
Connections already backfilled are complete; runs from before keep none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = 'UPDATE connection SET backfill_progress = 1.0 WHERE backfilled_at IS NOT NULL'


def upgrade() -> None:
    op.add_column('connection', sa.Column('backfill_progress', sa.Float(), nullable=True))
    op.add_column('sync_run', sa.Column('backfill_progress', sa.Float(), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('sync_run') as batch_op:
        batch_op.drop_column('backfill_progress')
    with op.batch_alter_table('connection') as batch_op:
        batch_op.drop_column('backfill_progress')
