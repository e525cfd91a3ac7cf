"""customer listing indexes end with the id

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 10:30:00.000000

Listings sort by a column, then by id; with the id in the index and a row comparison at the
cursor, a page starts at its cursor even inside a long run of equal values (most customers
have one order) instead of sorting or skipping the whole run.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SORTS = (
    ('ix_customer_created', 'created_at'),
    ('ix_customer_last_order', 'last_order_at'),
    ('ix_customer_total_spent', 'total_spent'),
    ('ix_customer_order_count', 'order_count'),
)


def upgrade() -> None:
    with op.batch_alter_table('customer') as batch_op:
        for name, column in SORTS:
            batch_op.drop_index(name)
            batch_op.create_index(name, ['shop_id', column, 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer') as batch_op:
        for name, column in SORTS:
            batch_op.drop_index(name)
            batch_op.create_index(name, ['shop_id', column], unique=False)
