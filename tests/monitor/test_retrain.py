"""Retraining on alert: a firing rule with `action: retrain` writes the training set of the
alert's window, runs the site's command once with the set's path and the alert id, audits it,
never runs two at a time, and in dry-run mode only shows what would run."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_online_grading import NOW, endpoint, exchange_row, scoring_rubrics  # noqa: F401 (a fixture)

from medops.audit.trail import events
from medops.errors import UserError
from medops.monitor.alerts import check
from medops.monitor.online import grade_window
from medops.monitor.policy import MonitorPolicy, load_monitor_policy
from medops.monitor.windows import window_bounds
from medops.store.exchanges import insert_exchanges
from medops.store.repository import Store

SCRIPT = (
    "import json, os, time; "
    "open(os.environ['RECORD'], 'a').write(json.dumps({k: os.environ[k] for k in "
    "('MEDOPS_TRAINING_SET', 'MEDOPS_TRAINING_DATA', 'MEDOPS_ALERT_ID')}) + '\\n'); time.sleep(3)"
)


@pytest.fixture
def graded(endpoint, tmp_path):  # noqa: F811
    """A window of traffic graded online: four good answers, three poor ones (score 0)."""
    store = Store.open(str(tmp_path / "m.db"))
    rows = [exchange_row(i, response="GOOD: rest.") for i in range(4)]
    rows += [exchange_row(i, response="Rest.", text=f"Poorly answered question {i}") for i in range(4, 7)]
    insert_exchanges(store, rows)
    start, end = window_bounds("1h", NOW)
    outcome = grade_window(
        store,
        start=start,
        end=end,
        grader="openai:fake-grader",
        grader_base_url=endpoint.base_url,
        share=1.0,
        rubrics=scoring_rubrics(tmp_path / "rubrics.jsonl"),
        run_options={"retry_base_delay": 0.05},
    )
    assert outcome.status == "completed"
    return store


def policy(tmp_path, **retrain) -> MonitorPolicy:
    document = {
        "window": "1h",
        "rules": [
            {"metric": "online:overall_score", "min": 0.9, "action": "retrain"},
            {"name": "safety", "metric": "online:axis:safety", "min": 0.9, "action": "retrain"},
        ],
        "retrain": {"output_dir": str(tmp_path / "retrain"), "below": 0.5, "heldout": 0.0, **retrain},
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_monitor_policy(path)


def test_a_firing_retrain_rule_runs_the_command_once_with_the_set_and_audits_it(graded, tmp_path, monkeypatch):
    record = tmp_path / "ran.jsonl"
    monkeypatch.setenv("RECORD", str(record))
    command = f'{sys.executable} -c "{SCRIPT}"'
    result = check(graded, policy(tmp_path, command=command), now=NOW)
    fired = [f for f in result.findings if f.outcome == "fired"]
    assert len(fired) == 2
    first, second = (f.retrain for f in fired)
    assert first["status"] == "started" and first["rows"] == 3
    # never more than one at a time: the second alert's retraining waits for none, it is skipped
    assert second["status"] == "skipped" and f"pid {first['pid']}" in second["reason"]
    deadline = time.monotonic() + 30
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    ran = [json.loads(x) for x in record.read_text().splitlines()]
    assert len(ran) == 1 and ran[0]["MEDOPS_ALERT_ID"] == str(fired[0].alert_id)
    train = ran[0]["MEDOPS_TRAINING_DATA"]
    assert train == f"{ran[0]['MEDOPS_TRAINING_SET']}/train.jsonl"
    rows = [json.loads(x) for x in Path(train).read_text().splitlines()]
    assert sorted(r["prompt"][0]["content"] for r in rows) == [f"Poorly answered question {i}" for i in range(4, 7)]
    manifest = json.loads(Path(ran[0]["MEDOPS_TRAINING_SET"], "manifest.json").read_text())
    assert sorted(r["exchange_id"] for r in manifest["rows"]) == sorted(
        r["prompt_id"].removeprefix("exchange:") for r in rows
    )
    assert all(r["score"] < 0.5 for r in manifest["rows"])
    trail = [(e["action"], e["details"]) for e in events(graded) if e["action"].startswith("retrain.")]
    assert [a for a, _ in trail] == ["retrain.started", "retrain.skipped"]
    assert trail[0][1]["alert_id"] == fired[0].alert_id and trail[0][1]["train_rows"] == 3


def test_dry_run_shows_what_would_run_and_writes_nothing(graded, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("kind: Job\nspec: {template: {spec: {containers: [{env: [{value: '${MEDOPS_TRAINING_SET}'}]}]}}}\n")
    result = check(graded, policy(tmp_path, job_manifest=str(job), dry_run=True), now=NOW)
    would = [f.retrain for f in result.findings if f.outcome == "fired"]
    assert [w["status"] for w in would] == ["dry_run", "dry_run"]
    assert would[0]["command"][:3] == ["kubectl", "apply", "-f"] and would[0]["environment"]["MEDOPS_ALERT_ID"]
    assert not (tmp_path / "retrain").exists()


def test_a_retrain_rule_needs_a_retrain_section(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"rules": [{"metric": "online:overall_score", "min": 0.5, "action": "retrain"}]}))
    with pytest.raises(UserError, match="retrain"):
        load_monitor_policy(path)
