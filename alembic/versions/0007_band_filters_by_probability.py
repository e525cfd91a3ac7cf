"""risk listings: one index for the risk order and band filters

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:00:00.000000

A band is a range of probability under the shop's thresholds, so band filters now use the
probability index and `(shop_id, band, probability)` goes: every full recompute rewrites each
current score, and that index cost about a third of the write. The probability index gains
the customer id, the risk order's tie-breaker, so a page starts at its cursor even among
thousands of equal probabilities.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('risk_score') as batch_op:
        batch_op.drop_index('ix_risk_score_band_probability')
        batch_op.drop_index('ix_risk_score_probability')
        batch_op.create_index(
            'ix_risk_score_probability', ['shop_id', 'probability', 'customer_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('risk_score') as batch_op:
        batch_op.drop_index('ix_risk_score_probability')
        batch_op.create_index('ix_risk_score_probability', ['shop_id', 'probability'], unique=False)
        batch_op.create_index(
            'ix_risk_score_band_probability', ['shop_id', 'band', 'probability'], unique=False
        )
