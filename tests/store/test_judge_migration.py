"""Migration 0011: a store recorded at revision 0009 (one verdict per criterion, no judge) opens
with each row read as its run's one judge: the same scores, the same export, and a resume that
asks only what failed."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from sqlalchemy import create_engine

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.store.database import _alembic_config, head_revision
from medops.testing.fake_openai import ServerThread


def to_revision_0009(db) -> None:
    """The store as medops 0009 kept it: every later revision undone."""
    engine = create_engine(f"sqlite:///{db}")
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    engine.dispose()


def columns(db, table: str) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [row[1] for row in connection.execute(f"pragma table_info({table})")]


@pytest.mark.parametrize("extra", [{}, {"criteria_per_call": 2}])
def test_a_0009_store_upgrades_and_scores_identically(monkeypatch, tmp_path, extra):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    db = tmp_path / "medops.db"
    data = write_jsonl(
        tmp_path / "r.jsonl",
        [
            example("p1", [("Advises rest {met}", 5, ["axis:completeness"]), ("Mentions fluids {unmet}", 3, [])]),
            example("p2", [("Recommends a doctor {met}", 4, []), ("Checks the dose", 2, [])], text="Fever."),
            example("p3", [("Is kind {grader-malformed:1}", 2, []), ("Is harmful {unmet}", -6, [])], text="Dizzy."),
        ],
    )
    with ServerThread() as endpoint:
        config = api.healthbench_config(
            data=str(data),
            model="openai:fake-model",
            grader="openai:fake-grader",
            model_base_url=endpoint.base_url,
            grader_base_url=endpoint.base_url,
            retry_base_delay=0.05,
            grader_parse_retries=0,
            **extra,
        )
        first = api.evaluate(config, db=db)  # "Is kind" gets one unreadable reply: incomplete
        assert first.exit_code == 3 and first.summary["n_ungraded_criteria"] >= 1
        before = api.run(str(first.run_id), db=db)
        exported = api.export(str(first.run_id), db=db)

        to_revision_0009(db)
        assert "judge" not in columns(db, "grades") and "judges" not in columns(db, "runs")
        after = api.run(str(first.run_id), db=db)  # opening the store migrates it to the head
        with sqlite3.connect(db) as connection:
            assert connection.execute("select version_num from alembic_version").fetchone() == (head_revision(),)
            mode = "grouped" if extra else "text"
            judges = connection.execute("select distinct judge from grades").fetchall()
            assert judges == [(f"{mode}:openai:fake-grader",)]
        assert {k: v for k, v in after.items() if k != "wall_seconds"} == {
            k: v for k, v in before.items() if k != "wall_seconds"
        }
        assert api.export(str(first.run_id), db=db) == exported

        asked = len(endpoint.server.log)
        resumed = api.resume(str(first.run_id), db=db)  # only the unreadable criteria are asked again
        assert (resumed.status, resumed.exit_code) == ("completed", 0)
        assert len(endpoint.server.log) - asked == first.summary["usage"]["grader"]["failed"] / (2 if extra else 1)
    with sqlite3.connect(db) as connection:
        assert connection.execute("select count(*) from grades").fetchone() == (6,)
