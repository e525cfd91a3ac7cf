"""customer first product, kept at ingest

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 03:00:00.000000

The risk model's first-timer segment is the product of the first line naming one on a
customer's first purchase. A full recompute found it with a window over every order of the
shop and then their lines (4-6 s of a recompute at 10 million orders); ingest now keeps it
on the customer with the other order aggregates. Existing customers get it here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same rule as `domain.ingest.aggregates`: the first purchase (neither cancelled nor refunded)
# by order time then id, and on it the line of lowest position that names a product.
BACKFILL = """
UPDATE customer SET first_product_id = (
    SELECT line.product_id FROM order_line AS line
    WHERE line.shop_id = customer.shop_id
      AND line.product_id IS NOT NULL
      AND line.order_id = (
          SELECT purchase.id FROM "order" AS purchase
          WHERE purchase.shop_id = customer.shop_id
            AND purchase.customer_id = customer.id
            AND purchase.status NOT IN ('cancelled', 'refunded')
          ORDER BY purchase.ordered_at, purchase.id
          LIMIT 1
      )
    ORDER BY line.position
    LIMIT 1
)
WHERE first_order_at IS NOT NULL
"""


def upgrade() -> None:
    op.add_column('customer', sa.Column('first_product_id', sa.Uuid(), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('customer') as batch_op:
        batch_op.drop_column('first_product_id')
