"""drop redundant shop foreign keys of ingest tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 22:30:00.000000

Rows of these tables reach their shop through a composite foreign key of NOT NULL columns,
`(shop_id, <parent>_id)`, to a parent that is itself tied to the shop: their own `(shop_id)`
foreign key to `shop` proved nothing more and cost a check per inserted row.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('product', 'order', 'order_line', 'customer_identity', 'subscription', 'subscription_event')
# PostgreSQL's own names for the constraints; on SQLite, whose foreign keys are unnamed, batch
# mode names the reflected ones by the same pattern so they can be dropped.
NAMING = {'fk': '%(table_name)s_%(column_0_N_name)s_fkey'}


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
            batch_op.drop_constraint(f'{table}_shop_id_fkey', type_='foreignkey')


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
            batch_op.create_foreign_key(f'{table}_shop_id_fkey', 'shop', ['shop_id'], ['id'])
