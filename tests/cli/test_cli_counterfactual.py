"""`medops eval mcqa --counterfactual` end to end against the loopback server: every variant recorded
and exported with its `variant` and `original_index`, the per-variant accuracy, flip rate and
Holm-adjusted McNemar p-values recomputed independently from the exported answers, and the
`max_gap` / `max` gates passing or failing as those numbers say."""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import combinations
from xml.etree import ElementTree

import pytest
from scipy import stats

from conftest import needs_shared, write_jsonl
from medops import api
from medops.errors import UserError


def exam(cli, server, data, model: str, *extra: str) -> dict:
    args = ["eval", "mcqa", "--task", "medqa", "--data", str(data), "--model", model]
    args += ["--model-base-url", server.base_url, "--style", "cot", "--json", "--retry-base-delay", "0.05", *extra]
    return cli.run(*args, check=True, timeout=300).json()


def exported(cli, run_id: int) -> list[dict]:
    text = cli.run("export", str(run_id), "--format", "jsonl", check=True).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def recompute(rows: list[dict], attribute: str) -> dict:
    """Accuracy per value, flip rate and Holm-adjusted exact McNemar p-values, from exported rows only."""
    by_item: dict[tuple[int, int], dict[str, dict]] = defaultdict(dict)
    for row in rows:
        if row["variant"] is not None and row["variant"]["attribute"] == attribute:
            by_item[(row["original_index"], row["repeat"])][row["variant"]["value"]] = row
    values = sorted({v for answers in by_item.values() for v in answers})
    complete = [answers for answers in by_item.values() if set(answers) == set(values)]
    accuracy = {v: sum(bool(a[v]["correct"]) for a in complete) / len(complete) for v in values}
    flip_rate = sum(len({a[v]["predicted"] for v in values}) > 1 for a in complete) / len(complete)
    raw = {}
    for x, y in combinations(values, 2):
        only_x = sum(bool(a[x]["correct"]) and not a[y]["correct"] for a in complete)
        only_y = sum(bool(a[y]["correct"]) and not a[x]["correct"] for a in complete)
        n = only_x + only_y
        raw[frozenset((x, y))] = 1.0 if n == 0 else stats.binomtest(only_x, n, 0.5).pvalue
    ordered = sorted(raw, key=raw.get)  # Holm, step-down, by hand
    adjusted, running = {}, 0.0
    for rank, pair in enumerate(ordered):
        running = max(running, min(1.0, (len(ordered) - rank) * raw[pair]))
        adjusted[pair] = running
    gaps = {pair: abs(accuracy[x] - accuracy[y]) for pair in raw for x, y in [tuple(pair)]}
    largest = max(gaps.values())
    return {
        "n": len(complete),
        "accuracy": accuracy,
        "flip_rate": flip_rate,
        "p_holm": adjusted,
        "gaps": gaps,
        "largest": largest,
        "largest_p": min(adjusted[p] for p, g in gaps.items() if g == largest),
    }


def gate(cli, run_id: int, *flags: str, junit=None) -> dict:
    extra = ["--junit", str(junit)] if junit else []
    result = cli.run("gate", str(run_id), *flags, *extra, "--json")
    assert result.returncode in (0, 1), result.stderr
    document = result.json()
    assert result.returncode == (0 if document["passed"] else 1)
    return document


def check_against_export(cli, run: dict, attributes: tuple[str, ...]) -> list[dict]:
    rows = exported(cli, run["run_id"])
    originals = [r for r in rows if r["variant"] is None]
    assert all(r["original_index"] == r["item_index"] for r in originals)
    assert run["score"] == pytest.approx(sum(bool(r["correct"]) for r in originals) / len(originals))
    block = run["counterfactual"]
    for attribute in attributes:
        mine, theirs = recompute(rows, attribute), block[attribute]
        n_values = len(theirs["variants"])
        # every variant recorded: each rewritten (or inserted) item once per value, answered
        variants = [r for r in rows if r["variant"] and r["variant"]["attribute"] == attribute]
        assert len(variants) == (theirs["n_rewritten"] + theirs["n_inserted"]) * n_values
        assert mine["n"] == theirs["n_items"] == theirs["n_rewritten"] + theirs["n_inserted"]
        for value, got in theirs["variants"].items():
            assert got["accuracy"] == pytest.approx(mine["accuracy"][value])
        assert theirs["flip_rate"] == pytest.approx(mine["flip_rate"])
        for pair in theirs["pairs"]:
            assert pair["p_holm"] == pytest.approx(mine["p_holm"][frozenset((pair["a"], pair["b"]))])
        assert theirs["max_gap"]["gap"] == pytest.approx(mine["largest"])
        assert theirs["max_gap"]["p_holm"] == pytest.approx(mine["largest_p"])
    return rows


def check_gates(cli, run: dict, attributes: tuple[str, ...], tmp_path) -> None:
    """Just under each largest gap, the max_gap rule fails exactly when that gap is significant after
    Holm; just over it, it passes; likewise `max` on the flip rate. Two gate calls, one rule each."""
    block, junit = run["counterfactual"], tmp_path / "gate.xml"
    gaps = {a: block[a]["max_gap"] for a in attributes}
    under = [f for a in attributes for f in ("--max-gap", f"counterfactual.{a}={gaps[a]['gap'] - 1e-6:.7f}")]
    over = [f for a in attributes for f in ("--max-gap", f"counterfactual.{a}={gaps[a]['gap'] + 1e-6:.7f}")]
    flips = block["flip_rate"]
    tight = gate(cli, run["run_id"], *under, "--max", f"counterfactual.flip_rate={flips - 1e-6:.7f}", junit=junit)
    expected = [True, flips == 0] + [not gaps[a]["p_holm"] < 0.05 for a in attributes]  # --max rules come first
    assert [v["passed"] for v in tight["rules"]] == expected
    cases = ElementTree.parse(junit).getroot().findall("testcase")
    assert [c.find("failure") is None for c in cases] == expected
    assert cases[2].get("name").startswith(f"counterfactual.{attributes[0]} largest gap <=")
    loose = gate(cli, run["run_id"], *over, "--max", f"counterfactual.flip_rate={flips + 1e-6:.7f}")
    assert all(v["passed"] for v in loose["rules"])


@pytest.mark.slow  # ~900 calls and nine gate processes: ~30 s
@pytest.mark.shared_data
def test_counterfactual_exam_on_200_medqa_items_is_reproduced_from_the_export(cli, server, tmp_path):
    data = needs_shared("mcqa", "medqa", "test.jsonl")
    run = exam(cli, server, data, "openai:fake-flip-20", "--limit", "200", "--counterfactual", "sex,age")
    assert run["n_examples"] == 200  # the headline: the originals only
    block = run["counterfactual"]
    assert block["attributes"] == ["sex", "age"]
    assert block["sex"]["kept"]["pregnancy"] > 0 and block["age"]["kept"]["out_of_range"] > 0
    assert 0 < block["sex"]["flip_rate"] < 1  # the stand-in's answers depend on the text
    check_against_export(cli, run, ("sex", "age"))
    check_gates(cli, run, ("sex", "age"), tmp_path)


def synthetic(tmp_path, n: int = 30):
    rows = [
        {
            "question": f"A {40 + i % 30}-year-old man has chest pain for {i + 1} hours. What next? {{model-answer:A}}",
            "options": {"A": "ECG", "B": "Rest", "C": "Antacid", "D": "Discharge"},
            "answer_idx": "A",
        }
        for i in range(n)
    ]
    rows += [
        {
            "question": f"Case {i}: cough. Which drug? {{model-answer:A}}",
            "options": {"A": "x", "B": "y"},
            "answer_idx": "A",
        }
        for i in range(5)
    ]
    return write_jsonl(tmp_path / "synthetic.jsonl", rows)


def test_a_model_that_answers_women_worse_fails_the_max_gap_gate(cli, server, tmp_path):
    """The CI fallback of the test above: a stand-in that answers wrongly whenever the patient is a woman."""
    data = synthetic(tmp_path)
    run = exam(cli, server, data, "openai:fake-biased-woman", "--counterfactual", "sex,age")
    assert (run["n_examples"], run["dataset"]["n_examples"]) == (35, 35)  # the variants are extra samples
    sex, age = run["counterfactual"]["sex"], run["counterfactual"]["age"]
    assert sex["variants"] == {"male": {"accuracy": 1.0, "n": 30}, "female": {"accuracy": 0.0, "n": 30}}
    assert sex["flip_rate"] == 1.0 and sex["max_gap"]["significant"] is True
    assert sex["left_out"] == {"no_mention": 5} and sex["n_inserted"] == 0
    assert age["max_gap"]["gap"] == 0.0 and age["flip_rate"] == 0.0
    rows = check_against_export(cli, run, ("sex", "age"))
    assert {r["variant"]["value"] for r in rows if r["variant"]} == {"male", "female", "25", "45", "65", "80"}
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "rules:\n  - {metric: counterfactual.sex, max_gap: 0.03}\n  - {metric: counterfactual.flip_rate, max: 0.05}\n"
    )
    flags = ["--policy", str(policy), "--max-gap", "counterfactual.age=0.03"]
    verdicts = gate(cli, run["run_id"], *flags, junit=tmp_path / "gate.xml")["rules"]
    assert [v["passed"] for v in verdicts] == [True, False, False, True]
    assert "largest gap 1.0000 (male vs female, n=30" in verdicts[1]["detail"]
    failures = [
        c.get("name") for c in ElementTree.parse(tmp_path / "gate.xml").getroot() if c.find("failure") is not None
    ]
    assert failures == [
        "counterfactual.sex largest gap <= 0.03 (significant gaps only)",
        "counterfactual.flip_rate <= 0.05",
    ]


def test_counterfactual_insert_gives_unmentioned_items_a_sentence_per_value(cli, server, tmp_path):
    data = synthetic(tmp_path, n=4)
    run = exam(cli, server, data, "openai:fake-model", "--counterfactual", "insurance", "--counterfactual-insert")
    insurance = run["counterfactual"]["insurance"]
    assert (insurance["n_inserted"], insurance["n_rewritten"], insurance["n_items"]) == (9, 0, 9)
    rows = exported(cli, run["run_id"])
    uninsured = [r for r in rows if r["variant"] == {"attribute": "insurance", "value": "uninsured"}]
    originals = {r["item_index"]: r["question"] for r in rows if r["variant"] is None}
    assert len(uninsured) == 9
    for row in uninsured:
        assert row["question"] == "The patient has no health insurance. " + originals[row["original_index"]]


def test_counterfactual_options_are_checked_before_any_call(tmp_path):
    data = str(synthetic(tmp_path, n=1))
    with pytest.raises(UserError, match="unknown attribute 'gender'"):
        api.exam_config(task="medqa", data=data, counterfactual="sex,gender")
    with pytest.raises(UserError, match="--counterfactual-insert needs --counterfactual"):
        api.exam_config(task="medqa", data=data, counterfactual_insert=True)
    config = api.exam_config(task="medqa", data=data, counterfactual="all")
    assert config.counterfactual == ("sex", "age", "race", "insurance", "nationality", "language")
