"""Online grading: seeded stratified samples of recorded exchanges, graded as an ordinary run, scores
stored per window and tag; the Korean rubric set for Korean conversations; textless exchanges counted."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import SECRET, write_jsonl
from medops.errors import DataError, UserError
from medops.evaluation.results import export_rows
from medops.monitor.online import (
    conversation,
    default_rubric_sets,
    grade_window,
    language_of,
    load_rubric_set,
    sample_exchanges,
)
from medops.monitor.windows import parse_duration, window_bounds
from medops.store.exchanges import insert_exchanges
from medops.store.repository import Store
from medops.store.schema import Exchange
from medops.store.scores import latest_scores, scores

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def exchange_row(i: int, *, department="ER", arm="primary", text=None, response="GOOD answer.", **extra) -> dict:
    row = {
        "created_at": NOW - timedelta(minutes=10),
        "source": "gateway",
        "route": "/v1/chat/completions",
        "model": "ward-model",
        "department": department,
        "application": "triage-bot",
        "arm": arm,
        "messages": [{"role": "user", "content": text or f"Question {i} about my headache."}],
        "response": response,
    }
    row.update(extra)
    return row


def scoring_rubrics(path: Path) -> Path:
    """One criterion, met exactly when the stored answer contains GOOD (the fake grader's {met-if:})."""
    return write_jsonl(
        path,
        [
            {"criterion": "The answer is good {met-if:GOOD}", "points": 10, "tags": ["axis:safety"]},
            {"criterion": "Clear {met-if:GOOD}", "points": 5, "tags": ["axis:communication"]},
        ],
    )


@pytest.fixture
def endpoint(server, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MEDOPS_CACHE_DIR", str(tmp_path / "cache"))
    return server


def make(i: int, **kw) -> Exchange:
    return Exchange(id=i, **exchange_row(i, **kw))


def test_windows():
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    start, end = window_bounds("6h", NOW)
    assert end - start == timedelta(hours=6) and end == NOW
    with pytest.raises(UserError, match="not a duration"):
        parse_duration("soon")
    with pytest.raises(UserError, match="at most 10 years"):
        parse_duration("999999999d")  # was an OverflowError (a 500 in the dashboard)


def test_sampling_is_seeded_and_stratified():
    found = [make(i, department="ER") for i in range(1, 41)]
    found += [make(i, department="IM") for i in range(41, 51)]
    found += [make(i, department="IM", arm="candidate") for i in range(51, 54)]
    found += [make(i, department="ER", messages=None, response=None) for i in range(54, 58)]  # PHI block
    first = sample_exchanges(found, share=0.1, seed=7)
    again = sample_exchanges(list(reversed(found)), share=0.1, seed=7)
    assert [e.id for e in first.chosen] == [e.id for e in again.chosen]  # reproducible, order-free
    assert first.textless == 4 and first.in_window == 57
    assert first.strata == {
        "ER/primary": {"available": 40, "sampled": 4},
        "IM/candidate": {"available": 3, "sampled": 1},  # at least one per non-empty stratum
        "IM/primary": {"available": 10, "sampled": 1},
    }
    picked = {(e.department, e.arm) for e in first.chosen}
    assert picked == {("ER", "primary"), ("IM", "primary"), ("IM", "candidate")}
    others = {tuple(e.id for e in sample_exchanges(found, share=0.1, seed=s).chosen) for s in range(5)}
    assert len(others) > 1  # the seed matters
    # a fixed number, spread in proportion, at least one each
    by_n = sample_exchanges(found, n=10, seed=0)
    assert by_n.strata["ER/primary"]["sampled"] == 7  # 10 x 40/53 = 7.55; largest remainders go to IM
    assert by_n.strata["IM/primary"]["sampled"] == 2
    assert by_n.strata["IM/candidate"]["sampled"] == 1
    with pytest.raises(UserError):
        sample_exchanges(found, share=1.5)


def test_sampling_completes_shadow_pairs():
    found = [make(i, pair_id=f"p{i}") for i in range(1, 21)]
    found += [make(100 + i, arm="shadow", pair_id=f"p{i}") for i in range(1, 21)]
    sample = sample_exchanges(found, share=0.1, seed=0)
    pairs = {e.pair_id for e in sample.chosen}
    assert len(sample.chosen) == 2 * len(pairs)  # both halves of every sampled pair
    assert sample.pair_completions > 0


def test_language_and_conversation():
    korean = make(1, text="어제부터 가슴이 답답하고 숨이 차요. 응급실에 가야 하나요?")
    assert language_of(conversation(korean)) == "ko"
    assert language_of(conversation(make(2))) == "en"
    parts = make(3, messages=[{"role": "user", "content": [{"type": "text", "text": "hello"}]}, {"role": "tool"}])
    assert conversation(parts) == [{"role": "user", "content": "hello"}]
    assert conversation(make(4, response=None)) is None
    sets = default_rubric_sets()
    assert any("응급" in item.criterion for item in sets["ko"])
    assert any(item.points < 0 for item in sets["en"]) and {"axis:safety", "axis:communication"} <= {
        tag for item in sets["en"] for tag in item.tags
    }


def test_bad_rubric_file(tmp_path):
    bad = tmp_path / "rubrics.jsonl"
    bad.write_text('{"criterion": "ok", "points": 5}\n{"criterion": "x", "points": "many"}\n')
    with pytest.raises(DataError, match=r"rubrics.jsonl:2: points"):
        load_rubric_set(bad)
    bad.write_text('{"criterion": "ok", "points": 5}\n{"points": 3}\n')
    with pytest.raises(DataError, match=r"rubrics.jsonl:2: criterion"):
        load_rubric_set(bad)


def test_window_graded_and_scored_per_tag(endpoint, tmp_path):
    store = Store.open(str(tmp_path / "m.db"))
    rows = [exchange_row(i, department="ER", response="GOOD: rest.") for i in range(4)]
    rows += [exchange_row(i, department="IM", response="Rest.") for i in range(4, 6)]
    rows += [exchange_row(6, department="IM", messages=None, response=None)]  # blocked: no text
    rows += [exchange_row(7, department="ER", created_at=NOW - timedelta(hours=3))]  # outside the window
    insert_exchanges(store, rows)
    rubrics = scoring_rubrics(tmp_path / "rubrics.jsonl")
    start, end = window_bounds("1h", NOW)
    outcome = grade_window(
        store,
        start=start,
        end=end,
        grader="openai:fake-grader",
        grader_base_url=endpoint.base_url,
        share=1.0,
        rubrics=rubrics,
        run_options={"retry_base_delay": 0.05},
    )
    assert outcome.status == "completed" and outcome.run_id is not None
    assert outcome.sample.in_window == 7 and outcome.sample.textless == 1 and len(outcome.sample.chosen) == 6
    assert "1 of 7 exchange(s)" in outcome.message and "without text" in outcome.message
    stored = scores(store, source="online", metric="overall_score")
    value = {r.tag: (r.value, r.n) for r in stored}
    assert value["all"] == (pytest.approx(4 / 6), 6)
    assert value["department:ER"] == (1.0, 4)
    assert value["department:IM"] == (0.0, 2)
    assert value["arm:primary"][1] == 6 and value["application:triage-bot"][1] == 6
    assert value["language:en"][1] == 6
    assert {r.run_id for r in stored} == {outcome.run_id}
    axes = {(r.tag, r.metric): r.value for r in scores(store, source="online", tag="department:ER")}
    assert axes[("department:ER", "axis:safety")] == 1.0
    assert axes[("department:ER", "axis:communication")] == 1.0
    assert all(r.details["textless"] == 1 for r in stored)

    # a later window is its own point of the series; latest_scores gives that window only
    later = exchange_row(20, department="ER", response="Rest.", created_at=NOW + timedelta(minutes=30))
    insert_exchanges(store, [later])
    second = grade_window(
        store,
        start=NOW,
        end=NOW + timedelta(hours=1),
        grader="openai:fake-grader",
        grader_base_url=endpoint.base_url,
        share=1.0,
        rubrics=rubrics,
        run_options={"retry_base_delay": 0.05},
    )
    series = scores(store, source="online", tag="all", metric="overall_score")
    assert [round(r.value, 3) for r in series] == [round(4 / 6, 3), 0.0]
    assert len({r.window_start for r in series}) == 2
    latest = latest_scores(store, source="online")
    assert {r.run_id for r in latest} == {second.run_id}
    assert scores(store, source="online", since=NOW, tag="all", metric="overall_score")[0].run_id == second.run_id


def test_korean_exchanges_get_the_korean_set(endpoint, tmp_path):
    store = Store.open(str(tmp_path / "m.db"))
    insert_exchanges(
        store,
        [
            exchange_row(1, text="아이가 열이 39도까지 올라요. 해열제는 얼마나?", response="{met} 해열제는"),
            exchange_row(2, text="My child has a fever of 39C. How much paracetamol?", response="{met} Give..."),
        ],
    )
    start, end = window_bounds("1h", NOW)
    outcome = grade_window(
        store,
        start=start,
        end=end,
        grader="openai:fake-grader",
        grader_base_url=endpoint.base_url,
        share=1.0,
        run_options={"retry_base_delay": 0.05},
    )
    assert outcome.status == "completed"
    assert outcome.languages == {"language:ko": 1, "language:en": 1}
    criteria: dict[str, set[str]] = {}
    for row in export_rows(store, str(outcome.run_id)):
        criteria.setdefault(row["prompt_id"], set()).add(row["criterion"])
    ko_set = {item.criterion for item in default_rubric_sets()["ko"]}
    en_set = {item.criterion for item in default_rubric_sets()["en"]}
    ids = sorted(criteria)
    assert criteria[ids[0]] == ko_set and criteria[ids[1]] == en_set
    assert {r.tag for r in scores(store, source="online", metric="overall_score")} >= {"language:ko", "language:en"}


def test_cli_grade(cli, server, tmp_path):
    store = Store.open(str(cli.db))
    insert_exchanges(store, [exchange_row(i, department="ER" if i % 2 else "IM") for i in range(6)])
    insert_exchanges(store, [exchange_row(9, messages=None, response=None)])
    rubrics = scoring_rubrics(tmp_path / "rubrics.jsonl")
    args = ["monitor", "grade", "--grader", "openai:fake-grader", "--grader-base-url", server.base_url]
    args += ["--since", "1h", "--rubrics", str(rubrics), "--retry-base-delay", "0.05"]
    result = cli.run(*args, "--sample", "0.5", "--json", check=True)
    document = result.json()
    assert document["sampled"] == 4 and document["textless"] == 1  # 0.5 of 3 per department rounds to 2
    assert document["status"] == "completed" and document["overall_score"]["all"] == {"value": 1.0, "n": 4}
    assert "without text" in result.stderr
    again = cli.run(*args, "--sample", "0.5", "--json", check=True).json()
    assert again["strata"] == document["strata"]  # the same seed: the same sample
    table = cli.run(*args, "--sample-n", "2", check=True)
    assert "department:ER" in table.stdout and "overall_score" in table.stdout
    assert "1 without text (not gradable)" in table.stdout

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"criterion": "c", "points": 1}\n{"criterion": "", "points": 1}\n')
    refused = cli.run("monitor", "grade", "--grader", "openai:fake-grader", "--rubrics", str(bad))
    assert refused.returncode == 2
    assert "bad.jsonl:2: criterion" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert json.loads(json.dumps(document))  # plain JSON
