"""One store for the dashboard tests: two rubric runs (the candidate's response carries a script
and an onerror handler, its prompt a patient's name and phone number), an exam run, a gate
decision, monitor scores and an alert; a review set of the candidate run; users and tokens of every role."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import example, write_jsonl
from medops import api
from medops.store.alerts import fire_alert
from medops.store.scores import add_scores

EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
PATIENT = "John Smith"
PHONE = "555-123-4567"
PASSWORD = "correct horse battery staple"
ROLES = ("viewer", "reviewer", "operator", "admin")


@dataclass
class Dashboard:
    db: Path
    tmp: Path
    tokens: dict[str, str] = field(default_factory=dict)  # role -> API token
    base_url: str = ""


def build(tmp: Path, fake_base_url: str) -> Dashboard:
    db = tmp / "medops.db"
    data = write_jsonl(
        tmp / "set.jsonl",
        [
            example(
                "fever-01",
                [
                    ("Advises rest and fluids {met-if:REST}", 5, ["axis:completeness"]),
                    ("Recommends antibiotics without a reason {met-if:ANTIBIOTIC}", -4, ["axis:accuracy"]),
                ],
                text=f"My son has had a fever for three days.\nPatient {PATIENT}, phone {PHONE}.",
                tags=["theme:global_health"],
            ),
            example(
                "headache-02",
                [
                    ("Advises rest {met-if:REST}", 3, ["axis:completeness"]),
                    ("Asks about the patient's age {met-if:AGE}", 2, ["axis:context_awareness"]),
                ],
                tags=["theme:hedging"],
            ),
            example("cough-03", [("Advises rest {met-if:REST}", 2, ["axis:completeness"])], tags=["theme:hedging"]),
        ],
    )
    responses = {
        "baseline": ["Plenty of REST and fluids.", "REST, and how old are you (AGE)?", "REST helps."],
        "candidate": [f"REST and an ANTIBIOTIC.\n{EVIL}\nSecond line.", "REST.", "Drink water."],
    }
    for name, texts in responses.items():
        given = write_jsonl(tmp / f"{name}.jsonl", [{"index": i, "response": t} for i, t in enumerate(texts)])
        config = api.healthbench_config(
            data=str(data), responses=str(given), grader="openai:fake-grader", grader_base_url=fake_base_url
        )
        api.evaluate(config, db=str(db), name=name)
    exam = write_jsonl(
        tmp / "exam.jsonl",
        [
            {
                "question": f"Q{i}: which drug first? {{model-answer:{'A' if i else 'B'}}}",
                "options": {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "None"},
                "answer_idx": "A",
                "answer": "Aspirin",
            }
            for i in range(3)
        ],
    )
    config = api.exam_config(task="medqa", data=str(exam), model="openai:fake-model", model_base_url=fake_base_url)
    api.evaluate(config, db=str(db), name="exam")
    api.gate("candidate", [api.Rule(metric="overall_score", min=0.5)], db=str(db), actor="os:ci")
    store = api.open_store(str(db))
    now = datetime.now(timezone.utc)
    points = []
    for hour, value in enumerate((0.71, 0.74, 0.69, 0.72, 0.55)):
        start = now - timedelta(hours=6 - hour)
        points.append(
            {
                "source": "online",
                "window_start": start,
                "window_end": start + timedelta(hours=1),
                "metric": "overall_score",
                "value": value,
                "n": 40,
            }
        )
    add_scores(store, points)
    fire_alert(
        store,
        rule="online_score_drop",
        key="online_score_drop:all",
        message="online score 0.55 < 0.6",
        quiet_after=datetime(2000, 1, 1, tzinfo=timezone.utc),
    )
    api.create_review_set("candidate", "dash-set", sample=3, reviewers=2, db=str(db), actor="os:test")
    dashboard = Dashboard(db, tmp)
    for role in ROLES:
        api.add_user(store, role[:3] + "-user", role, PASSWORD, actor="os:test")
        dashboard.tokens[role], _row = api.create_token(store, f"{role}-token", role, actor="os:test")
    return dashboard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(dashboard: Dashboard, env: dict[str, str]) -> subprocess.Popen:
    """``medops serve`` on a free loopback port; waits until it answers."""
    port = free_port()
    command = [sys.executable, "-m", "medops.cli.app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--db", str(dashboard.db)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    dashboard.base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"medops serve exited {proc.returncode}: {proc.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("medops serve did not start within 30 s")
