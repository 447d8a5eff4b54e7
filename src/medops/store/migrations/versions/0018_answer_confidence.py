"""An exam answer's confidence (the chosen option's probability, or the one the answer states)

Revision ID: 0018
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))  # NULL: none given


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("confidence")
