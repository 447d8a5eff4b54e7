"""Exchanges get a record id, unique, so that a write retried after a store outage (a
PostgreSQL restart, a full disk) never stores an exchange twice

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("exchanges", sa.Column("record_id", sa.String(32), nullable=True))
    op.create_index("ix_exchanges_record_id", "exchanges", ["record_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_exchanges_record_id", table_name="exchanges")
    with op.batch_alter_table("exchanges") as batch:
        batch.drop_column("record_id")
