"""The HealthBench CLI end to end, against a real HTTP server on loopback."""

from __future__ import annotations

import csv
import io
import itertools
import json
import signal
import sqlite3
import time

import pytest

from conftest import SECRET, example, write_jsonl

AX = ["axis:completeness"]


def three_examples(tmp_path, *, extra: str = ""):
    return write_jsonl(
        tmp_path / "set.jsonl",
        [
            example(
                "p1",
                [
                    (f"Advises rest {{met}}{extra}", 5, AX),
                    ("Recommends opioids {unmet}", -5, ["axis:accuracy"]),
                    ("Asks about duration {unmet}", 3, ["axis:context_awareness"]),
                ],
                tags=["theme:global_health"],
                ideal="Rest and drink water.",
            ),
            example(
                "p2",
                [("휴식을 권한다 {met}", 4, AX), ("Suggests a dangerous dose {met}", -2, ["axis:accuracy"])],
                text="두통이 있어요.",
                tags=["theme:global_health"],
            ),
            example(
                "p3",
                [("Refers to emergency care {met}", 10, AX)],
                tags=["theme:emergency_referrals"],
                ideal="Call emergency services now.",
            ),
        ],
    )


def test_normal_run_json_store_and_export(cli, server, tmp_path):
    data = three_examples(tmp_path)
    result = cli.run(*cli.eval_args(server, data), "--json", "--name", "first", check=True)
    summary = result.json()
    assert result.stdout.count("\n") == 1  # only the JSON document on stdout
    # p1: 5 of 8 positive points; p2: (4 - 2) / 4; p3: 10 / 10
    scores = [5 / 8, 2 / 4, 1.0]
    assert summary["score"] == pytest.approx(sum(scores) / 3)
    assert summary["metrics"]["overall_score"]["n_samples"] == 3
    assert summary["metrics"]["theme:global_health"]["mean"] == pytest.approx((5 / 8 + 2 / 4) / 2)
    assert summary["metrics"]["theme:emergency_referrals"]["mean"] == 1.0
    assert summary["metrics"]["axis:completeness"]["mean"] == 1.0
    assert "axis:accuracy" not in summary["metrics"]  # only negative points under that tag
    assert summary["usage"]["model"]["calls"] == 3 and summary["usage"]["grader"]["calls"] == 6
    assert summary["dataset"]["sha256"] and summary["dataset"]["n_examples"] == 3
    assert summary["n_excluded_examples"] == 0 and summary["bootstrap_std"] >= 0
    assert len(server.server.log) == 9

    listed = cli.run("runs", "list", "--json", check=True).json()
    assert [(r["name"], r["status"]) for r in listed] == [("first", "completed")]
    shown = cli.run("runs", "show", "first", "--json", check=True).json()
    assert shown["score"] == summary["score"] and shown["config"]["concurrency"] == 32

    rows = [json.loads(line) for line in cli.run("export", "first", check=True).stdout.splitlines()]
    assert len(rows) == 6
    assert rows[0] | {"response": None, "explanation": None} == {
        "example_index": 0,
        "repeat": 0,
        "prompt_id": "p1",
        "criterion_index": 0,
        "criterion": "Advises rest {met}",
        "points": 5,
        "tags": AX,
        "criteria_met": True,
        "explanation": None,
        "ungraded_reason": None,
        "response": None,
    }
    out = tmp_path / "grades.csv"
    cli.run("export", "first", "--format", "csv", "-o", str(out), check=True)
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 6 and table[3]["criterion"] == "휴식을 권한다 {met}"

    # The same run again is answered from the store's cache: no new calls.
    again = cli.run(*cli.eval_args(server, data), "--json", check=True).json()
    assert again["score"] == summary["score"] and len(server.server.log) == 9
    assert again["usage"]["grader"]["calls"] == 0
    cli.run(*cli.eval_args(server, data), "--json", "--no-cache", check=True)
    assert len(server.server.log) == 18


def test_human_summary_goes_to_stdout(cli, server, tmp_path):
    result = cli.run(*cli.eval_args(server, three_examples(tmp_path)), check=True)
    assert "overall_score" in result.stdout and "theme:emergency_referrals" in result.stdout
    assert "score 0.708" in result.stdout


def test_rate_limits_honour_retry_after(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "rl.jsonl", [example("p", [("Criterion {met} {grader-429:2}", 1, [])])])
    summary = cli.run(*cli.eval_args(server, data), "--json", check=True).json()
    grader_calls = [c for c in server.server.log if c.model == "fake-grader"]
    assert [c.status for c in grader_calls] == [429, 429, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(grader_calls)]
    assert all(gap >= 0.95 for gap in gaps)  # the server asked for Retry-After: 1
    assert summary["score"] == 1.0
    assert summary["usage"]["grader"]["calls"] == 1 and summary["usage"]["grader"]["rejected"] == 2  # 429s: not calls


def test_server_errors_are_retried_then_recorded(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "e.jsonl",
        [
            example("ok-after-2", [("A {met} {grader-500:2}", 1, [])]),
            example("never", [("B {met} {grader-500:all}", 1, [])]),
        ],
    )
    result = cli.run(*cli.eval_args(server, data, "--max-tries", "3"), "--json")
    assert result.returncode == 3  # a call that failed for good: incomplete, resumable
    summary = result.json()
    assert summary["status"] == "incomplete" and summary["n_failed_calls"] == 1
    assert summary["n_examples"] == 1 and summary["n_excluded_examples"] == 1
    assert summary["n_ungraded_criteria"] == 1
    rows = [json.loads(x) for x in cli.run("export", str(summary["run_id"]), check=True).stdout.splitlines()]
    never = next(r for r in rows if r["prompt_id"] == "never")
    assert never["criteria_met"] is None and "HTTP 500" in never["ungraded_reason"]
    assert "gave up after 3 tries" in never["ungraded_reason"]


def test_timeouts_are_retried(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "t.jsonl", [example("p", [("Slow {met} {grader-slow:1}", 1, [])])])
    summary = cli.run(*cli.eval_args(server, data, "--timeout", "0.5"), "--json", check=True).json()
    assert summary["score"] == 1.0 and summary["usage"]["grader"]["calls"] == 2


def test_unreadable_grader_replies(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "m.jsonl",
        [
            example(
                "fixed",
                [
                    ("A {met} {grader-malformed:2}", 2, []),
                    ("B {unmet} {grader-fence}", 2, []),
                    ("C {met} {grader-stringbool}", 2, []),
                ],
            ),
            example("broken", [("D {met} {grader-malformed:all}", 1, []), ("E {met}", 1, [])]),
        ],
    )
    result = cli.run(*cli.eval_args(server, data), "--json")
    assert result.returncode == 3
    summary = result.json()
    assert summary["status"] == "incomplete" and summary["usage"]["grader"]["failed"] == 1
    assert summary["n_examples"] == 1 and summary["n_excluded_examples"] == 1
    assert summary["n_ungraded_criteria"] == 1
    assert summary["score"] == pytest.approx(4 / 6)  # "broken" is left out of every metric
    rows = {r["criterion"]: r for r in map(json.loads, cli.run("export", "1", check=True).stdout.splitlines())}
    assert rows["D {met} {grader-malformed:all}"]["ungraded_reason"] == "unreadable grader reply after 4 tries"
    calls = [c for c in server.server.log if c.model == "fake-grader"]
    assert len(calls) == 3 + 2 + 4 + 1  # A needed 3 tries, D used all 4 (1 + --grader-parse-retries 3)


def test_responses_file_and_ideal_completions(cli, server, tmp_path):
    data = three_examples(tmp_path)
    responses = write_jsonl(
        tmp_path / "r.jsonl", [{"prompt_id": "p1", "response": "Rest."}, {"index": 2, "response": "Go to the ER."}]
    )
    base = [
        "eval",
        "healthbench",
        "--data",
        str(data),
        "--grader",
        "openai:fake-grader",
        "--grader-base-url",
        server.base_url,
        "--json",
    ]
    given = cli.run(*base, "--responses", str(responses), check=True).json()
    assert given["n_examples"] == 2 and given["model"] == "given"
    ideal = cli.run(*base, "--completions", "ideal", check=True).json()
    assert ideal["n_examples"] == 2  # p2 has no ideal completion
    assert not [c for c in server.server.log if c.model == "fake-model"]
    rows = [json.loads(x) for x in cli.run("export", str(ideal["run_id"]), check=True).stdout.splitlines()]
    assert {r["response"] for r in rows} == {"Rest and drink water.", "Call emergency services now."}


def test_limit_repeats_seed_and_length_penalty(cli, server, tmp_path):
    rows = [example(f"p{i}", [(f"C{i} {{met}}", 1, [])]) for i in range(10)]
    data = write_jsonl(tmp_path / "ten.jsonl", rows)
    first = cli.run(
        *cli.eval_args(
            server, data, "--limit", "3", "--repeats", "2", "--length-penalty", "0.1", "--length-center", "0"
        ),
        "--json",
        check=True,
    ).json()
    assert first["n_examples"] == 6 and first["metrics"]["overall_score"]["n_samples"] == 6
    adjusted = first["metrics"]["overall_score_length_adjusted"]["mean"]
    reply_length = len("Reply 12345678: rest, drink fluids, and see a doctor if it gets worse.")
    assert adjusted == pytest.approx(1.0 - 0.1 * reply_length / 500)
    exported = [json.loads(x) for x in cli.run("export", str(first["run_id"]), check=True).stdout.splitlines()]
    picked = sorted({r["example_index"] for r in exported})
    assert len(picked) == 3 and {r["repeat"] for r in exported} == {0, 1}
    second = cli.run(*cli.eval_args(server, data, "--limit", "3"), "--json", check=True).json()
    again = sorted(
        {json.loads(x)["example_index"] for x in cli.run("export", str(second["run_id"])).stdout.splitlines()}
    )
    assert again == picked


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{missing}"], "no such file"),
        (["--data", "healthbench"], "not in the local cache; run `medops data pull healthbench`"),
        (["--data", "{bad}"], "bad.jsonl:2: rubrics.0.points"),
        (["--model", "gpt-4.1"], "expected BACKEND:NAME"),
        (["--model", "nope:x"], "unknown backend 'nope'"),
        (["--grader-template", "{missing}"], "cannot read grader template"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, server, tmp_path, args, message):
    good = three_examples(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        good.read_text().splitlines()[0]
        + "\n"
        + good.read_text().splitlines()[1].replace('"points": 4', '"points": "four"')
        + "\n"
    )
    args = [a.format(missing=tmp_path / "missing.jsonl", bad=bad) for a in args]
    base = cli.eval_args(server, good)
    for flag, value in zip(args[::2], args[1::2], strict=False):
        if flag in base:
            base[base.index(flag) + 1] = value
        else:
            base += [flag, value]
    result = cli.run(*base)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert server.server.log == []
    if cli.db.exists():
        assert sqlite3.connect(cli.db).execute("select count(*) from runs").fetchone() == (0,)


def test_missing_key_and_unreachable_database(cli, server, tmp_path):
    data = three_examples(tmp_path)
    no_key = cli.run(
        "eval",
        "healthbench",
        "--data",
        str(data),
        "--model",
        "openai:gpt-4.1",
        "--grader",
        "openai:gpt-4.1",
        env={"OPENAI_API_KEY": ""},
    )
    assert no_key.returncode == 2 and "set OPENAI_API_KEY" in no_key.stderr
    named = cli.run(*cli.eval_args(server, data, "--grader-api-key-env", "HOSPITAL_KEY"))
    assert named.returncode == 2 and "HOSPITAL_KEY" in named.stderr
    bad_db = cli.run(*cli.eval_args(server, data), "--db", str(tmp_path / "no" / "such" / "dir.db"))
    assert bad_db.returncode == 2 and "does not exist" in bad_db.stderr
    pg = cli.run("runs", "list", "--db", "postgresql+psycopg://medops:hunter2@127.0.0.1:1/medops")
    assert pg.returncode == 2 and "hunter2" not in pg.stderr and "Traceback" not in pg.stderr


def test_rejected_key_stops_the_run_resumably(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", [example("p", [("A {met}", 1, [])])])
    args = cli.eval_args(server, data)
    args[args.index("openai:fake-grader")] = "openai:fake-grader-unauthorized"
    result = cli.run(*args, "--json")
    assert result.returncode == 2 and "HTTP 401" in result.stderr
    assert SECRET not in result.stderr + result.stdout  # the server echoed it; medops redacts it
    shown = cli.run("runs", "show", "1", "--json", check=True).json()
    assert shown["status"] == "failed" and "--resume 1" in shown["error"] and SECRET not in shown["error"]
    # The model's response was kept: resuming with a working grader would not ask for it again.
    assert shown["n_excluded_examples"] == 1


def test_secrets_never_reach_outputs_or_the_store(cli, server, tmp_path):
    data = three_examples(tmp_path)
    result = cli.run(*cli.eval_args(server, data, "--max-tries", "1"), "--json", check=True)
    shown = cli.run("runs", "show", "1", "--json", check=True)
    assert SECRET not in result.stdout + result.stderr + shown.stdout
    for path in cli.db.parent.glob("medops.db*"):
        assert SECRET.encode() not in path.read_bytes()


def _grades_written(db) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            return connection.execute("select count(*) from grades").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_kill_9_then_resume_repeats_no_completed_call(cli, server, tmp_path):
    server.server.behaviour.latency_s = 0.05
    rows = [
        example(
            f"p{i}", [(f"A{i} {{met}}", 2, AX), (f"B{i} {{unmet}}", 1, []), (f"C{i}", -1, [])], text=f"Question {i}"
        )
        for i in range(30)
    ]
    data = write_jsonl(tmp_path / "big.jsonl", rows)
    process = cli.popen(*cli.eval_args(server, data, "--concurrency", "4", "--no-cache"), "--name", "crashy")
    deadline = time.time() + 60
    while _grades_written(cli.db) < 20 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with sqlite3.connect(cli.db) as connection:
        graded = connection.execute("select count(*) from grades").fetchone()[0]
        responded = connection.execute("select count(*) from responses").fetchone()[0]
    assert 20 <= graded < 90
    assert cli.run("runs", "show", "crashy", "--json", check=True).json()["status"] == "interrupted"
    calls_before = len(server.server.log)

    resumed = cli.run("eval", "healthbench", "--resume", "crashy", "--json", check=True).json()
    assert resumed["status"] == "completed" and resumed["n_examples"] == 30
    # Exactly the calls not yet in the store were made again: nothing persisted was repeated.
    assert len(server.server.log) - calls_before == (30 - responded) + (90 - graded)
    ok = [c.key for c in server.server.log if c.status == 200]
    # Only calls in flight at the kill (at most 4 per endpoint) were answered twice.
    assert len(ok) - len(set(ok)) <= 8 and len(set(ok)) == 120
    single = cli.run(*cli.eval_args(server, data), "--json", "--no-cache", check=True).json()
    assert resumed["score"] == single["score"] and resumed["metrics"] == single["metrics"]


def test_ctrl_c_interrupts_cleanly_and_resumes(cli, server, tmp_path):
    server.server.behaviour.latency_s = 0.1
    data = write_jsonl(
        tmp_path / "c.jsonl", [example(f"p{i}", [(f"A{i} {{met}}", 1, [])], text=f"Q{i}") for i in range(40)]
    )
    process = cli.popen(*cli.eval_args(server, data, "--concurrency", "2"), "--json")
    deadline = time.time() + 60
    while _grades_written(cli.db) < 4 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume 1" in stderr
    partial = json.loads(stdout)
    assert partial["status"] == "interrupted" and 0 < partial["n_examples"] < 40
    final = cli.run("eval", "healthbench", "--resume", "1", "--json", check=True).json()
    assert final["status"] == "completed" and final["n_examples"] == 40
    ok = [c.key for c in server.server.log if c.status == 200]
    assert len(ok) == len(set(ok)) == 80


def test_custom_template_prompts_are_exactly_the_reference_rendering(cli, server, tmp_path):
    template = tmp_path / "template.txt"
    template.write_text("\nRate the last turn.\n# Conversation\n<<conversation>>\n# Rubric item\n<<rubric_item>>\n")
    data = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {
                "prompt": [
                    {"role": "user", "content": "Fever 39C\u2028since today"},
                    {"role": "assistant", "content": "How old?"},
                    {"role": "user", "content": "Four."},
                ],
                "prompt_id": "t",
                "example_tags": [],
                "rubrics": [
                    {"criterion": "Asks about hydration {met}", "points": 5, "tags": []},
                    {"criterion": "Gives adult dose {unmet}", "points": -2.5, "tags": []},
                ],
            }
        ],
    )
    cli.run(
        *cli.eval_args(
            server,
            data,
            "--grader-template",
            str(template),
            "--model-system-message",
            "Be brief.",
            "--grader-system-message",
            "You are a helpful assistant.",
        ),
        check=True,
    )
    model_call = next(c for c in server.server.log if c.model == "fake-model")
    assert model_call.messages[0] == {"role": "system", "content": "Be brief."}
    reply = (
        "Reply "
        + __import__("hashlib").sha256("\n".join(m["content"] for m in model_call.messages).encode()).hexdigest()[:8]
    )
    reply += ": rest, drink fluids, and see a doctor if it gets worse."
    convo = "\n\n".join(
        f"{m['role']}: {m['content']}" for m in [*model_call.messages, {"role": "assistant", "content": reply}]
    )
    expected = [
        "Rate the last turn.\n# Conversation\n" + convo + "\n# Rubric item\n[5] Asks about hydration {met}",
        "Rate the last turn.\n# Conversation\n" + convo + "\n# Rubric item\n[-2.5] Gives adult dose {unmet}",
    ]
    grader_calls = [c.messages for c in server.server.log if c.model == "fake-grader"]
    assert sorted(m[1]["content"] for m in grader_calls) == sorted(expected)
    assert all(m[0] == {"role": "system", "content": "You are a helpful assistant."} for m in grader_calls)
