"""Review sets: sampled examples of a rubric run and physicians' labels of their criteria

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_sets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("reviewers", sa.Integer(), nullable=False),
        sa.Column("n_examples", sa.Integer(), nullable=False),
        sa.Column("n_criteria", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_sets_run_id", "review_sets", ["run_id"])
    op.create_table(
        "review_examples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("set_id", sa.Integer(), sa.ForeignKey("review_sets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("example_index", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.String(200), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.UniqueConstraint("set_id", "position"),
    )
    op.create_table(
        "review_labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("set_id", sa.Integer(), sa.ForeignKey("review_sets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("criterion_index", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("set_id", "position", "criterion_index", "reviewer", name="uq_review_label"),
    )


def downgrade() -> None:
    op.drop_table("review_labels")
    op.drop_table("review_examples")
    op.drop_index("ix_review_sets_run_id", "review_sets")
    op.drop_table("review_sets")
