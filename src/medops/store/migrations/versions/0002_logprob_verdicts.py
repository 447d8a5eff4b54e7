"""P(met) for logprob verdicts; logprobs kept with cached calls

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grades") as batch:
        batch.add_column(sa.Column("p_met", sa.Float(), nullable=True))
    with op.batch_alter_table("call_cache") as batch:
        batch.add_column(sa.Column("extra", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_cache") as batch:
        batch.drop_column("extra")
    with op.batch_alter_table("grades") as batch:
        batch.drop_column("p_met")
