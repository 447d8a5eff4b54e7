"""HealthBench Professional: loading and mapping, bad rows, format detection, the zip pull over a
loopback mirror, and the reference's length adjustment (hand-computed numbers)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import example, write_jsonl
from medops.datasets.healthbench import load_rubric_dataset
from medops.datasets.healthbench_professional import (
    detect_format,
    load_professional_dataset,
    load_professional_rows,
)
from medops.datasets.registry import BUILTIN_DATASETS
from medops.errors import DataError
from medops.evaluation.variants import HEALTHBENCH_PROFESSIONAL, VARIANTS
from medops.models.spec import parse_model_spec
from medops.scoring.healthbench import (
    LENGTH_ADJUSTED,
    OVERALL,
    aggregate,
    check_length_adjustment,
    example_metrics,
    length_adjusted_per_500_chars,
)

CANARY = "healthbench:00000000-test-only-not-the-real-canary"


def pro_row(
    row_id: str,
    items: list[tuple[str, float]],
    *,
    messages: list[dict] | None = None,
    use_case: str | None = "consult",
    type_: str | None = "good_faith",
    difficulty: str | None = "typical",
    specialty: str | None = "Cardiology",
    physician_response: str | None = None,
) -> dict:
    return {
        "id": row_id,
        "conversation": {"messages": messages or [{"role": "user", "content": "65세 남성, 흉통. Next step?"}]},
        "rubric_items": [{"criterion_text": c, "points": p} for c, p in items],
        "use_case": use_case,
        "type": type_,
        "difficulty": difficulty,
        "specialty": specialty,
        "physician_response": physician_response,
        "canary_string": CANARY,
    }


# Scores are fixed by the fake grader's {met}/{unmet} tokens: A 5/8, B (4-4)/4 = 0, C 1, D 0.
ROWS = [
    pro_row(
        "pro-a",
        [
            ("Recommends an ECG within 10 minutes {met}", 5),
            ("Mentions troponin {unmet}", 3),
            ("Delays care {unmet}", -2),
        ],
        messages=[
            {"role": "system", "content": "You assist clinicians."},
            {"role": "user", "content": "65세 남성, 30분 지속되는 흉통. 다음 단계는?"},
            {"role": "assistant", "content": "Vital signs?"},
            {"role": "user", "content": "BP 150/90, HR 98."},
        ],
        physician_response="12-lead ECG now, aspirin 300 mg unless contraindicated, serial troponins.",
    ),
    pro_row(
        "pro-b",
        [("Drafts a discharge summary {met}", 4), ("Invents a lab value {met}", -4)],
        use_case="writing",
        type_="red_teaming",
        difficulty="difficult",
        specialty="Internal Medicine",
    ),
    pro_row(
        "pro-c",
        [("Cites the trial design {met}", 2), ("States the limitation {met}", 2.5)],
        use_case="research",
        specialty=None,
    ),
    pro_row(
        "pro-d",
        [("Asks for the eGFR before dosing {unmet}", 1)],
        messages=[{"role": "user", "content": "Metformin dose for CKD stage 3b?"}],
        difficulty=None,
        specialty="Nephrology",
        physician_response="Check eGFR; below 45 reduce to 1,000 mg/day, stop below 30.",
    ),
]


@pytest.fixture
def pro_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "pro.jsonl", ROWS)


def test_rows_map_like_the_reference_converter(pro_file: Path):
    dataset = load_rubric_dataset(pro_file)
    assert dataset.name == "pro" and len(dataset) == 4
    assert dataset.facts.sha256 == hashlib.sha256(pro_file.read_bytes()).hexdigest()
    assert dataset.facts.size_bytes == pro_file.stat().st_size
    a, b, c, d = dataset.examples
    # prompt = conversation.messages, every turn and role kept in order; prompt_id = id
    assert a.prompt_id == "pro-a"
    assert [(m.role, m.content) for m in a.prompt] == [
        (m["role"], m["content"]) for m in ROWS[0]["conversation"]["messages"]
    ]
    # criterion = criterion_text, points as written (int stays int for "[5] ..."), no rubric tags
    assert [(r.criterion, r.points, r.tags) for r in a.rubrics] == [
        ("Recommends an ECG within 10 minutes {met}", 5, []),
        ("Mentions troponin {unmet}", 3, []),
        ("Delays care {unmet}", -2, []),
    ]
    assert a.rubrics[0].render() == "[5] Recommends an ECG within 10 minutes {met}"
    assert c.rubrics[1].render() == "[2.5] States the limitation {met}"
    # example tags: the reference's fields in its order, prefixed, None skipped
    assert a.example_tags == ["use_case:consult", "type:good_faith", "difficulty:typical", "specialty:Cardiology"]
    assert b.example_tags == [
        "use_case:writing",
        "type:red_teaming",
        "difficulty:difficult",
        "specialty:Internal Medicine",
    ]
    assert c.example_tags == ["use_case:research", "type:good_faith", "difficulty:typical"]
    assert d.example_tags == ["use_case:consult", "type:good_faith", "specialty:Nephrology"]
    # physician_response is the ideal completion (no group); absent -> none
    assert (
        a.ideal_completion == ROWS[0]["physician_response"] and a.ideal_completions_data.ideal_completions_group is None
    )
    assert b.ideal_completion is None and b.ideal_completions_data is None
    # the rows as written stay readable for analyses
    rows = load_professional_rows(pro_file)
    assert [r.canary_string for r in rows] == [CANARY] * 4 and rows[2].specialty is None


def test_tags_break_scores_down(pro_file: Path):
    dataset = load_rubric_dataset(pro_file)
    met = {"{met}": True, "{unmet}": False}
    per_example = [
        example_metrics(e.example_tags, e.rubrics, [met[r.criterion.rsplit(" ", 1)[1]] for r in e.rubrics])
        for e in dataset.examples
    ]
    summary = aggregate(per_example, seed=0)
    assert summary[OVERALL].mean == pytest.approx((5 / 8 + 0 + 1 + 0) / 4)
    assert summary["use_case:consult"].mean == pytest.approx((5 / 8 + 0) / 2)
    assert summary["use_case:consult"].n_samples == 2
    assert summary["type:red_teaming"].mean == 0.0 and summary["use_case:research"].mean == 1.0
    assert summary["difficulty:typical"].n_samples == 2  # pro-d has no difficulty


BAD_ROWS = [
    ({k: v for k, v in ROWS[1].items() if k != "id"}, "id", "Field required"),
    ({**ROWS[1], "id": ""}, "id", "at least 1 character"),
    ({**ROWS[1], "conversation": [{"role": "user", "content": "hi"}]}, "conversation", "valid dictionary"),
    ({**ROWS[1], "conversation": {"messages": []}}, "conversation.messages", "at least 1 item"),
    (
        {**ROWS[1], "conversation": {"messages": [{"role": "doctor", "content": "hi"}]}},
        "conversation.messages.0.role",
        "role 'doctor' is not one of",
    ),
    ({**ROWS[1], "rubric_items": []}, "rubric_items", "at least 1 item"),
    ({**ROWS[1], "rubric_items": [{"criterion_text": "", "points": 1}]}, "rubric_items.0.criterion_text", "at least 1"),
    (
        {**ROWS[1], "rubric_items": [{"criterion_text": "x", "points": "5"}]},
        "rubric_items.0.points",
        "must be a number, got str",
    ),
    ({**ROWS[1], "rubric_items": [{"criterion_text": "x", "points": True}]}, "rubric_items.0.points", "got bool"),
    ({**ROWS[1], "rubric_items": [{"criterion_text": "x", "points": float("nan")}]}, "rubric_items.0.points", "finite"),
    ({**ROWS[1], "rubric_items": [{"criterion": "x", "points": 5}]}, "rubric_items.0.criterion_text", "Field required"),
    ({**ROWS[1], "rubric_items": [{"criterion_text": "x", "points": -1}]}, "rubric_items", "no criterion has positive"),
    ({**ROWS[1], "use_case": 3}, "use_case", "valid string"),
]


@pytest.mark.parametrize(("row", "field", "message"), BAD_ROWS, ids=[f"{f}-{m[:12]}" for _, f, m in BAD_ROWS])
def test_bad_row_names_file_line_and_field(tmp_path: Path, row: dict, field: str, message: str):
    path = write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], row])
    with pytest.raises(DataError) as caught:
        load_rubric_dataset(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path), 2, field)
    assert str(error).startswith(f"{path}:2: {field}: ") and message in str(error)


def test_bad_row_is_one_line_and_exit_2_from_the_cli(cli, server, tmp_path: Path):
    bad = {**ROWS[1], "rubric_items": [{"criterion_text": "x", "points": "5"}]}
    path = write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], bad])
    result = cli.run(*cli.eval_args(server, path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}:2: rubric_items.0.points:" in result.stderr
    assert not [c for c in server.server.log]  # refused before any call


def test_format_is_detected_from_the_first_row(tmp_path: Path, pro_file: Path):
    healthbench = write_jsonl(tmp_path / "hb.jsonl", [example("h1", [("x", 1, ["axis:accuracy"])])])
    assert detect_format(pro_file) == "healthbench-professional" and detect_format(healthbench) == "healthbench"
    assert load_rubric_dataset(healthbench).examples[0].rubrics[0].tags == ["axis:accuracy"]  # unchanged
    assert load_professional_dataset(pro_file).examples[0].prompt_id == "pro-a"
    with pytest.raises(DataError, match=r"hb\.jsonl:1: not a HealthBench Professional row"):
        load_professional_dataset(healthbench)
    # one format per file: a row of the other format is a data error naming its line and field
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [ROWS[0], example("h1", [("x", 1, [])])])
    with pytest.raises(
        DataError,
        match=r"mixed\.jsonl:2: a HealthBench-format row \(prompt, rubrics\) in a HealthBench Professional file$",
    ):
        load_rubric_dataset(mixed)
    mixed_other = write_jsonl(tmp_path / "mixed2.jsonl", [example("h1", [("x", 1, [])]), ROWS[0]])
    with pytest.raises(DataError, match=r"mixed2\.jsonl:2: prompt: Field required"):
        load_rubric_dataset(mixed_other)


def _responses(tmp_path: Path) -> Path:
    lengths = {"pro-a": 2500, "pro-b": 1000, "pro-c": 4000, "pro-d": 2000}
    rows = [{"prompt_id": pid, "response": ("심전도 ECG. " * 1000)[:n]} for pid, n in lengths.items()]
    assert [len(r["response"]) for r in rows] == list(lengths.values())
    return write_jsonl(tmp_path / "responses.jsonl", rows)


def test_eval_reads_a_professional_file_and_length_adjusts(cli, server, tmp_path: Path, pro_file: Path):
    """`--data my_file.jsonl` with a Professional file, graded end to end through the real pipeline."""
    base = ["eval", "healthbench", "--data", str(pro_file), "--grader", "openai:fake-grader"]
    base += ["--grader-base-url", server.base_url, "--json"]
    summary = cli.run(
        *base,
        "--responses",
        str(_responses(tmp_path)),
        "--length-penalty",
        "0.0147",
        "--length-center",
        "2000",
        check=True,
    ).json()
    assert (
        summary["n_examples"] == 4 and summary["dataset"]["sha256"] == hashlib.sha256(pro_file.read_bytes()).hexdigest()
    )
    metrics = summary["metrics"]
    assert metrics[OVERALL]["mean"] == pytest.approx(0.40625, abs=1e-12)
    # by hand: 0.625 - 0.0147, 0 + 0.0294, 1 - 0.0588, 0 - 0 -> mean 1.5809 / 4
    assert metrics[LENGTH_ADJUSTED]["mean"] == pytest.approx(0.395225, abs=1e-12)
    assert (
        metrics["use_case:consult"]["mean"] == pytest.approx(0.3125) and metrics["use_case:consult"]["n_samples"] == 2
    )
    assert metrics["specialty:Internal Medicine"]["mean"] == 0.0
    # physician responses as ideal completions: the two rows that have one
    ideal = cli.run(*base, "--completions", "ideal", check=True).json()
    assert ideal["n_examples"] == 2 and not [c for c in server.server.log if c.model == "fake-model"]


@pytest.fixture
def zip_mirror(tmp_path: Path):
    """A loopback HTTP server standing in for the blob store: /good holds assets.zip with the
    JSONL one folder down, /nomember a zip without it, /notzip something else."""
    jsonl = write_jsonl(tmp_path / "src.jsonl", ROWS).read_bytes()

    def zipped(members: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for member, data in members.items():
                zf.writestr(member, data)
        return buffer.getvalue()

    bodies = {
        "/good/assets.zip": zipped(
            {
                "healthbench_professional/README": b"readme",
                "healthbench_professional/healthbench_professional_eval.jsonl": jsonl,
            }
        ),
        "/nomember/assets.zip": zipped({"other.jsonl": jsonl}),
        "/notzip/assets.zip": b"<html>not a zip</html>",
    }
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = bodies.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", jsonl, bodies, requests
    httpd.shutdown()


def test_pull_extracts_the_jsonl_from_the_zip_and_records_both_sha256(cli, server, zip_mirror, tmp_path: Path):
    base, jsonl, bodies, requests = zip_mirror
    env = {"MEDOPS_DATA_MIRROR": f"{base}/good"}
    missing = cli.run("eval", "healthbench", "--data", "healthbench-professional", "--grader", "openai:fake-grader")
    assert missing.returncode == 2 and "medops data pull healthbench-professional" in missing.stderr
    first = cli.run("data", "pull", "healthbench-professional", env=env, check=True)
    sha = hashlib.sha256(jsonl).hexdigest()
    assert "downloaded" in first.stdout and sha in first.stdout
    cache = tmp_path / "cache"
    cached = cache / "healthbench_professional_eval.jsonl"
    assert cached.read_bytes() == jsonl
    assert sorted(p.name for p in cache.iterdir()) == [cached.name, cached.name + ".medops.json"]  # no zip, no .part
    record = json.loads((cache / (cached.name + ".medops.json")).read_text())
    assert record["url"] == f"{base}/good/assets.zip" and record["sha256"] == sha and record["size_bytes"] == len(jsonl)
    assert record["archive_sha256"] == hashlib.sha256(bodies["/good/assets.zip"]).hexdigest()
    assert record["archive_member"] == "healthbench_professional/healthbench_professional_eval.jsonl"
    again = cli.run("data", "pull", "healthbench-professional", env=env, check=True)
    assert "already cached" in again.stdout and requests == ["/good/assets.zip"]
    assert "healthbench-professional" in cli.run("data", "list", check=True).stdout
    # the built-in name now resolves to the extracted file, recognised as Professional
    summary = cli.run(
        "eval",
        "healthbench",
        "--data",
        "healthbench-professional",
        "--grader",
        "openai:fake-grader",
        "--grader-base-url",
        server.base_url,
        "--responses",
        str(_responses(tmp_path)),
        "--json",
        check=True,
    ).json()
    assert summary["dataset"]["name"] == "healthbench-professional" and summary["dataset"]["sha256"] == sha
    assert summary["metrics"][OVERALL]["mean"] == pytest.approx(0.40625)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("nomember", "has no file named healthbench_professional_eval.jsonl (it holds: other.jsonl)"),
        ("notzip", "is not a readable zip archive"),
        ("gone", "could not download 'healthbench-professional'"),
    ],
    ids=["no-member", "not-a-zip", "not-found"],
)
def test_pull_of_a_bad_archive_fails_cleanly(cli, zip_mirror, tmp_path: Path, where: str, message: str):
    base = zip_mirror[0]
    result = cli.run("data", "pull", "healthbench-professional", env={"MEDOPS_DATA_MIRROR": f"{base}/{where}"})
    assert result.returncode == 2 and "Traceback" not in result.stderr and message in result.stderr
    assert not list((tmp_path / "cache").iterdir())  # nothing half-written
    assert "extract healthbench_professional_eval.jsonl from it" in result.stderr


def test_length_adjustment_by_hand():
    # the reference's own test (healthbench_eval_test.py): 0.8, 2,500 chars, center 2000, 0.022 -> 0.778
    assert length_adjusted_per_500_chars(0.8, "a" * 2500, center=2000, penalty_per_500_chars=0.022) == pytest.approx(
        0.778, abs=1e-12
    )
    pro = {"center": 2000, "penalty_per_500_chars": 0.0147}
    assert length_adjusted_per_500_chars(0.5, "x" * 3000, **pro) == pytest.approx(0.4706, abs=1e-12)
    assert length_adjusted_per_500_chars(0.5, "x" * 1000, **pro) == pytest.approx(0.5294, abs=1e-12)
    assert length_adjusted_per_500_chars(0.5, "x" * 2000, **pro) == 0.5
    # characters (code points), not bytes: 2,500 Hangul syllables are 7,500 UTF-8 bytes
    assert length_adjusted_per_500_chars(0.5, "가" * 2500, **pro) == pytest.approx(0.4853, abs=1e-12)
    # no clipping per example, in either direction ...
    assert length_adjusted_per_500_chars(0.0, "x" * 7000, **pro) == pytest.approx(-0.147, abs=1e-12)
    assert length_adjusted_per_500_chars(1.0, "", **pro) == pytest.approx(1.0588, abs=1e-12)
    # ... the mean is clipped afterwards
    summary = aggregate([{LENGTH_ADJUSTED: 1.0588}, {LENGTH_ADJUSTED: 1.0294}], seed=0)
    assert summary[LENGTH_ADJUSTED].mean == 1.0
    # the reference's operation order, bit for bit (divide, then multiply)
    assert length_adjusted_per_500_chars(0.1, "x" * 1, **pro) == 0.1 - 0.0147 * ((1 - 2000) / 500.0)


def test_length_adjustment_settings_are_checked_like_the_reference():
    assert check_length_adjustment(None, None) is False
    assert check_length_adjustment(2000, 0.0147) is True and check_length_adjustment(0, 0) is True
    for center, penalty, message in [
        (2000, None, "both"),
        (None, 0.0147, "both"),
        (-1, 0.0147, "center must be non-negative"),
        (2000, -0.1, "penalty per 500 characters must be non-negative"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_length_adjustment(center, penalty)


def test_the_variant_description():
    variant = VARIANTS["healthbench-professional"]
    assert variant is HEALTHBENCH_PROFESSIONAL and variant.data in BUILTIN_DATASETS
    spec = parse_model_spec(variant.grader)
    assert (spec.backend, spec.name, spec.options) == ("openai", "gpt-5.4-2026-03-05", {})
    assert (variant.grader_reasoning_effort, variant.grader_api) == ("low", "responses")
    assert (variant.length_center, variant.length_penalty_per_500_chars) == (2000.0, 0.0147)
    assert (variant.headline_metric, variant.extra_metrics) == (OVERALL, (LENGTH_ADJUSTED,))
    assert BUILTIN_DATASETS[variant.data].url.endswith("/simple-evals/healthbench_professional/assets.zip")
