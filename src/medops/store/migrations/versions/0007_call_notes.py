"""Call notes: what before-call subscribers did to each call (the PHI policy and counts redacted)

Revision ID: 0007
Revises: 0006

A JSON object per response and grade row, e.g. ``{"phi": {"policy": "redact", "endpoint":
"external", "entities": {"PERSON": 2}}}``; counts only, never values. Rows written before this
revision have none.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("responses", "grades"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("notes", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("grades", "responses"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("notes")
