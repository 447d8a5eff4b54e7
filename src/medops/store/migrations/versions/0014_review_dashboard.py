"""Reviewing in the dashboard: "unsure" labels (met is NULL), a reviewer's comment, per-set
blinding, and operators' final labels beside the reviewers' own

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_labels") as batch:
        batch.alter_column("met", existing_type=sa.Boolean(), nullable=True)  # NULL: unsure
        batch.add_column(sa.Column("comment", sa.Text(), nullable=True))
    with op.batch_alter_table("review_sets") as batch:
        batch.add_column(sa.Column("blinded", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "review_adjudications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("set_id", sa.Integer(), sa.ForeignKey("review_sets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("criterion_index", sa.Integer(), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("set_id", "position", "criterion_index", name="uq_review_adjudication"),
    )


def downgrade() -> None:
    op.drop_table("review_adjudications")
    with op.batch_alter_table("review_sets") as batch:
        batch.drop_column("blinded")
    op.execute("DELETE FROM review_labels WHERE met IS NULL")
    with op.batch_alter_table("review_labels") as batch:
        batch.drop_column("comment")
        batch.alter_column("met", existing_type=sa.Boolean(), nullable=False)
