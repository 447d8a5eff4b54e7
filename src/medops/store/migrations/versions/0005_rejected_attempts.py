"""Rejected attempts: 429s counted apart from calls (a 429 is refused work, not a billed call)

Revision ID: 0005
Revises: 0004

Rows written before this revision counted their 429s in ``calls``; they read back with
``rejected`` 0, as nothing can split them now.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("responses", "grades"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("rejected", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    for table in ("grades", "responses"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("rejected")
