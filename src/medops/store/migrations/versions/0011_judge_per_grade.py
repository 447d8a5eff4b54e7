"""A judge per grade: each verdict is stored with the judge that gave it; runs keep their judges

Revision ID: 0011
Revises: 0010

``grades.judge`` joins the unique key (run, example, repeat, criterion, judge), so a run graded by
several judges keeps every juror's verdict. Rows recorded before get the name their run's one
judge has today (``<mode>:<grader>``, mode ``text``, ``logprob`` or ``grouped``), so they read
as one judge and a resumed old run asks only what is missing. ``runs.judges`` holds each judge's
name and identity and the reducer; it stays empty for runs recorded before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OLD_KEY = ["run_id", "example_index", "repeat", "criterion_index"]
NAMING = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}  # names SQLite's unnamed constraint


def legacy_judge_name(grader: str | None, config: dict | None) -> str:
    """The judge name medops gives a run's one grader (grading.grader.make_judge), frozen here."""
    config = config or {}
    mode = "grouped" if (config.get("criteria_per_call") or 1) > 1 else (config.get("grader_verdict") or "text")
    return f"{mode}:{grader or 'grader'}"


def _old_key_name(bind) -> str:
    for constraint in sa.inspect(bind).get_unique_constraints("grades"):
        if constraint["column_names"] == OLD_KEY and constraint["name"]:
            return constraint["name"]
    return "uq_grades_" + "_".join(OLD_KEY)


def upgrade() -> None:
    bind = op.get_bind()
    old_key = _old_key_name(bind)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("judges", sa.JSON(), nullable=True))
    with op.batch_alter_table("grades") as batch:
        batch.add_column(sa.Column("judge", sa.String(300), nullable=True))
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("grader", sa.String), sa.column("config", sa.JSON))
    grades = sa.table("grades", sa.column("run_id", sa.Integer), sa.column("judge", sa.String))
    graded = sa.select(grades.c.run_id).distinct()
    for run_id, grader, config in bind.execute(
        sa.select(runs.c.id, runs.c.grader, runs.c.config).where(runs.c.id.in_(graded))
    ).all():
        bind.execute(sa.update(grades).where(grades.c.run_id == run_id).values(judge=legacy_judge_name(grader, config)))
    with op.batch_alter_table("grades", naming_convention=NAMING) as batch:
        batch.alter_column("judge", existing_type=sa.String(300), nullable=False)
        batch.drop_constraint(old_key, type_="unique")
        batch.create_unique_constraint("uq_grades_verdict", [*OLD_KEY, "judge"])


def downgrade() -> None:
    """Back to one verdict per criterion: only each criterion's first judge's row is kept."""
    bind = op.get_bind()
    grades = sa.table(
        "grades",
        sa.column("id", sa.Integer),
        *(sa.column(name, sa.Integer) for name in OLD_KEY),
    )
    first = sa.select(sa.func.min(grades.c.id)).group_by(*(grades.c[name] for name in OLD_KEY))
    bind.execute(sa.delete(grades).where(grades.c.id.not_in(first)))
    with op.batch_alter_table("grades") as batch:
        batch.drop_constraint("uq_grades_verdict", type_="unique")
        batch.create_unique_constraint("grades_" + "_".join(OLD_KEY) + "_key", OLD_KEY)
        batch.drop_column("judge")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("judges")
