"""Monitoring: production exchanges, monitored score series and alerts

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("response_model", sa.String(200)),
        sa.Column("arm", sa.String(20), nullable=False),
        sa.Column("pair_id", sa.String(64)),
        sa.Column("conversation_id", sa.String(200)),
        sa.Column("department", sa.String(200)),
        sa.Column("application", sa.String(200)),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("latency_s", sa.Float()),
        sa.Column("ttft_s", sa.Float()),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("completion_tokens", sa.Integer()),
        sa.Column("finish_reason", sa.String(40)),
        sa.Column("messages", sa.JSON()),
        sa.Column("response", sa.Text()),
        sa.Column("notes", sa.JSON()),
    )
    op.create_index("ix_exchanges_created_at", "exchanges", ["created_at"])
    op.create_index("ix_exchanges_pair_id", "exchanges", ["pair_id"])
    op.create_table(
        "monitor_scores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tag", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("details", sa.JSON()),
    )
    op.create_index("ix_monitor_scores_source", "monitor_scores", ["source"])
    op.create_index("ix_monitor_scores_window_start", "monitor_scores", ["window_start"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON()),
        sa.Column("deliveries", sa.JSON()),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.String(200)),
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index("ix_alerts_key", "alerts", ["key"])


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("monitor_scores")
    op.drop_table("exchanges")
