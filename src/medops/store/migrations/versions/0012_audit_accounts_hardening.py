"""Audit and account hardening: refusal tallies, a site secret, token owners; typed names scrubbed
from sign-in attempts

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_tallies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bucket", sa.String(700), nullable=False, unique=True),
        sa.Column("minute", sa.String(17), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.String(32)),
        sa.Column("last_at", sa.String(32)),
    )
    op.create_index("ix_audit_tallies_minute", "audit_tallies", ["minute"])
    op.create_table(
        "site_secrets",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )
    op.add_column("api_tokens", sa.Column("owner_id", sa.Integer(), nullable=True))
    op.add_column("api_tokens", sa.Column("kind", sa.String(20), nullable=False, server_default="service"))
    # A failed sign-in kept what was typed as the name (a password in the wrong field, a patient's
    # name): keep only names of existing accounts.
    op.execute("UPDATE login_attempts SET name = 'unknown' WHERE name NOT IN (SELECT name FROM users)")


def downgrade() -> None:
    op.drop_column("api_tokens", "kind")
    op.drop_column("api_tokens", "owner_id")
    op.drop_table("site_secrets")
    op.drop_index("ix_audit_tallies_minute", "audit_tallies")
    op.drop_table("audit_tallies")
