"""Self-contained runs: dataset items stored once by content, and each run's job plan

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "item_sets",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "item_set_members",
        sa.Column("set_sha256", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["set_sha256"], ["item_sets.sha256"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_sha256"], ["items.sha256"]),
        sa.PrimaryKeyConstraint("set_sha256", "position"),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("item_set", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("plan", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("plan")
        batch.drop_column("item_set")
    op.drop_table("item_set_members")
    op.drop_table("item_sets")
    op.drop_table("items")
