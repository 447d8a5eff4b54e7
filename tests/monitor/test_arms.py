"""A/B arms side by side: shadow copies against their primaries (paired), the candidate arm against
the primary arm (unpaired), checked against hand computations and end to end from online grading."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest

from conftest import SECRET, write_jsonl
from medops.monitor.arms import arm_blocks, compare_arms, compare_unpaired
from medops.monitor.online import grade_window
from medops.monitor.windows import window_bounds
from medops.store.exchanges import insert_exchanges
from medops.store.repository import Store
from medops.store.schema import Exchange

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def exact_two_sided(null: list[Fraction], observed: Fraction) -> float:
    """scipy's two-sided exact permutation p: twice the smaller tail, capped at 1."""
    less = sum(v <= observed for v in null) / len(null)
    greater = sum(v >= observed for v in null) / len(null)
    return min(1.0, 2 * min(less, greater))


def test_unpaired_matches_a_hand_computation():
    primary = [1.0, 0.0, 1.0, 1.0]
    candidate = [0.0, 0.0, 1.0]
    r = compare_unpaired(primary, candidate, seed=0)
    assert (r.n_a, r.n_b) == (4, 3)
    assert r.mean_a == pytest.approx(0.75) and r.mean_b == pytest.approx(1 / 3)
    assert r.difference == pytest.approx(1 / 3 - 0.75)
    pooled = [Fraction(int(v)) for v in primary + candidate]
    null = []
    for picked in itertools.combinations(range(7), 3):  # every way to call 3 of the 7 "candidate"
        b = [pooled[i] for i in picked]
        a = [pooled[i] for i in range(7) if i not in picked]
        null.append(sum(b) / 3 - sum(a) / 4)
    observed = Fraction(1, 3) - Fraction(3, 4)
    assert r.p_value == pytest.approx(exact_two_sided(null, observed))
    assert r.test == "unpaired_permutation" and r.p_mann_whitney is not None
    assert r.ci95_low <= r.difference <= r.ci95_high and r.ci95_low >= -1 and r.ci95_high <= 1
    assert compare_unpaired([0.5, 0.5], [0.5], seed=0).p_value == 1.0  # no variation: no evidence


def make(i: int, arm: str, pair_id: str | None = None) -> Exchange:
    return Exchange(id=i, arm=arm, pair_id=pair_id, created_at=NOW, source="gateway", route="/")


def test_blocks_pick_the_right_test():
    found = [make(i, "primary", f"p{i}") for i in range(1, 6)]
    found += [make(10 + i, "shadow", f"p{i}") for i in range(1, 6)]
    found += [make(20 + i, "candidate") for i in range(1, 4)]
    found += [make(30, "shadow", "orphan")]  # its primary was not graded: no pair
    primary = {1: 1.0, 2: 1.0, 3: 0.5, 4: 1.0, 5: 0.0}
    shadow = {11: 0.0, 12: 1.0, 13: 0.0, 14: 0.5, 15: 0.0}
    candidate = {21: 0.0, 22: 1.0, 23: 0.0}
    graded = {**primary, **shadow, **candidate, 30: 1.0}
    blocks = arm_blocks(found, graded, seed=0)
    paired = blocks["shadow"]["result"]
    assert blocks["shadow"]["n"] == 5 and paired["test"] == "paired_sign_flip_permutation"
    assert paired["mean_a"] == pytest.approx(0.7) and paired["mean_b"] == pytest.approx(0.3)
    assert paired["difference"] == pytest.approx(-0.4)
    assert (paired["better"], paired["worse"], paired["unchanged"]) == (0, 3, 2)
    differences = [Fraction(shadow[10 + i] - primary[i]).limit_denominator() for i in range(1, 6)]
    null = [
        sum(s * d for s, d in zip(signs, differences, strict=True)) / 5
        for signs in itertools.product((1, -1), repeat=5)
    ]
    assert paired["p_value"] == pytest.approx(exact_two_sided(null, sum(differences) / 5))
    unpaired = blocks["candidate"]["result"]
    assert blocks["candidate"]["n"] == {"primary": 5, "candidate": 3}
    assert unpaired["test"] == "unpaired_permutation"
    assert unpaired["mean_a"] == pytest.approx(0.7) and unpaired["mean_b"] == pytest.approx(1 / 3)
    alone = arm_blocks(found[:5], primary, seed=0)
    assert alone["shadow"]["result"] is None and alone["candidate"]["result"] is None


def exchange_row(i: int, arm: str, answer: str, pair_id: str | None = None) -> dict:
    return {
        "created_at": NOW - timedelta(minutes=5),
        "source": "gateway",
        "route": "/v1/chat/completions",
        "department": "ER",
        "arm": arm,
        "pair_id": pair_id,
        "messages": [{"role": "user", "content": f"Question {i} about my cough."}],
        "response": answer,
    }


def test_compare_arms_from_online_grading(cli, server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MEDOPS_CACHE_DIR", str(tmp_path / "cache"))
    store = Store.open(str(cli.db))
    rows = [exchange_row(i, "primary", "GOOD: rest.", pair_id=f"p{i}") for i in range(6)]
    rows += [exchange_row(i, "shadow", "GOOD: rest." if i < 2 else "Rest.", pair_id=f"p{i}") for i in range(6)]
    rows += [exchange_row(10 + i, "candidate", "GOOD." if i == 0 else "Rest.") for i in range(4)]
    insert_exchanges(store, rows)
    rubrics = write_jsonl(tmp_path / "r.jsonl", [{"criterion": "Good {met-if:GOOD}", "points": 1, "tags": []}])
    start, end = window_bounds("1h", NOW + timedelta(seconds=1))
    outcome = grade_window(
        store,
        start=start,
        end=end,
        grader="openai:fake-grader",
        grader_base_url=server.base_url,
        share=1.0,
        rubrics=rubrics,
        run_options={"retry_base_delay": 0.05},
    )
    assert outcome.status == "completed"
    report = compare_arms(store, start=start, end=end, seed=0)
    assert report["runs"] == [outcome.run_id] and report["graded_exchanges"] == 16
    paired = report["shadow"]["result"]
    assert report["shadow"]["n"] == 6 and paired["test"] == "paired_sign_flip_permutation"
    assert paired["mean_a"] == 1.0 and paired["mean_b"] == pytest.approx(2 / 6)
    unpaired = report["candidate"]["result"]
    assert report["candidate"]["n"] == {"primary": 6, "candidate": 4}
    assert unpaired["mean_b"] == pytest.approx(0.25) and unpaired["difference"] == pytest.approx(-0.75)

    result = cli.run("monitor", "compare", "--since", "1h", "--json", check=True)
    assert result.json()["shadow"]["result"]["p_value"] == pytest.approx(paired["p_value"])
    table = cli.run("monitor", "compare", "--since", "1h", check=True).stdout
    assert "shadow vs primary (paired)" in table and "candidate vs primary (unpaired)" in table
    assert "paired_sign_flip_permutation" in table and "unpaired_permutation" in table
