import random
import warnings

import pytest

from conftest import example, write_jsonl
from medops.datasets.healthbench import DuplicatePromptIdWarning, load_rubric_dataset, select_indices
from medops.datasets.responses import load_responses
from medops.errors import DataError, UserError


def test_loads_valid_rows_and_keeps_integer_points(tmp_path):
    path = write_jsonl(
        tmp_path / "set.jsonl",
        [
            example("a", [("Advises rest", 5, ["axis:completeness"])]),
            example("b", [("Is kind", 2.5, []), ("Is rude", -3, [])]),
        ],
    )
    data = load_rubric_dataset(path)
    assert len(data) == 2 and data.name == "set"
    assert data.examples[0].rubrics[0].render() == "[5] Advises rest"
    assert data.examples[1].rubrics[0].render() == "[2.5] Is kind"
    assert len(data.facts.sha256) == 64 and data.facts.size_bytes == path.stat().st_size


def test_lines_split_on_newline_only(tmp_path):
    text = "first part\u2028second part\u2029third"
    path = write_jsonl(tmp_path / "u2028.jsonl", [example("a", [("ok", 1, [])], text=text)])
    assert load_rubric_dataset(path).examples[0].prompt[0].content == text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"prompt": [', "set.jsonl:2: invalid JSON"),
        ('{"prompt_id": "x", "rubrics": [{"criterion": "c", "points": 1}]}', "set.jsonl:2: prompt: Field required"),
        (
            '{"prompt": [{"role": "user", "content": "hi"}], "prompt_id": "x", "rubrics": [{"criterion": "c", '
            '"points": "five"}]}',
            "set.jsonl:2: rubrics.0.points",
        ),
        (
            '{"prompt": [{"role": "user", "content": "hi"}], "prompt_id": "x", "rubrics": [{"criterion": "c", '
            '"points": -1}]}',
            "set.jsonl:2: rubrics: no criterion has positive points",
        ),
        ("[1, 2]", "set.jsonl:2: expected a JSON object"),
        (
            '{"prompt": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "{}"}], "prompt_id": "x", '
            '"rubrics": [{"criterion": "c", "points": 1}]}',
            "set.jsonl:2: prompt.1.role: role 'tool' is not one of system, developer, user, assistant",
        ),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, line, expected):
    path = tmp_path / "set.jsonl"
    path.write_text(f"{write_line(example('ok', [('c', 1, [])]))}\n{line}\n")
    with pytest.raises(DataError) as info:
        load_rubric_dataset(path)
    assert expected in str(info.value)


def write_line(row):
    import json

    return json.dumps(row)


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_rubric_dataset(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="contains no examples"):
        load_rubric_dataset(tmp_path / "empty.jsonl")


def test_repeated_prompt_ids_are_kept_with_one_warning(tmp_path):
    rows = [example("same", [("c", 1, [])]), example("same", [("d", 2, [])]), example("other", [("e", 1, [])])]
    path = write_jsonl(tmp_path / "dup.jsonl", rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_rubric_dataset(path)
    assert len(data) == 3
    assert [w.category for w in caught] == [DuplicatePromptIdWarning]


def test_selection_matches_reference_sampling():
    population = [f"row{i}" for i in range(50)]
    expected = random.Random(0).sample(population, 7)  # what the reference does with --examples 7
    assert [population[i] for i in select_indices(50, 7, seed=0)] == expected
    assert select_indices(50, 7, seed=1) != select_indices(50, 7, seed=0)
    assert select_indices(5, None, seed=0) == [0, 1, 2, 3, 4]
    assert select_indices(5, 9, seed=0) == [0, 1, 2, 3, 4]


def test_responses_by_index_or_unique_prompt_id(tmp_path):
    data = load_rubric_dataset(
        write_jsonl(
            tmp_path / "d.jsonl",
            [example("a", [("c", 1, [])]), example("dup", [("c", 1, [])]), example("dup", [("c", 1, [])])],
        )
    )
    good = write_jsonl(tmp_path / "r.jsonl", [{"prompt_id": "a", "response": "x"}, {"index": 2, "response": "y"}])
    assert load_responses(good, data) == {0: "x", 2: "y"}
    ambiguous = write_jsonl(tmp_path / "amb.jsonl", [{"prompt_id": "dup", "response": "x"}])
    with pytest.raises(DataError, match=r"amb.jsonl:1: prompt_id: 'dup' is on 2 dataset rows \(\[1, 2\]\)"):
        load_responses(ambiguous, data)
    outside = write_jsonl(tmp_path / "out.jsonl", [{"index": 7, "response": "x"}])
    with pytest.raises(DataError, match=r"out.jsonl:1: index: 7 is outside"):
        load_responses(outside, data)
    keyless = write_jsonl(tmp_path / "nokey.jsonl", [{"response": "x"}])
    with pytest.raises(DataError, match=r"nokey.jsonl:1"):
        load_responses(keyless, data)


def test_every_chat_role_is_accepted(tmp_path):
    row = example("a", [("c", 1, [])])
    row["prompt"] = [{"role": r, "content": r} for r in ("system", "developer", "user", "assistant", "user")]
    data = load_rubric_dataset(write_jsonl(tmp_path / "roles.jsonl", [row]))
    assert [m.role for m in data.examples[0].prompt] == ["system", "developer", "user", "assistant", "user"]


@pytest.mark.parametrize("command", ["healthbench", "meta-eval"])
def test_an_unknown_role_is_one_line_and_exit_2(cli, tmp_path, command):
    if command == "healthbench":
        row = example("a", [("c", 1, [])])
        row["prompt"].append({"role": "Assistant", "content": "hello"})
        args = ["eval", "healthbench", "--model", "openai:m", "--grader", "openai:g"]
    else:
        row = {
            "prompt": [{"role": "user", "content": "hi"}, {"role": "model", "content": "hello"}],
            "completion": "Rest.",
            "rubric": "Advises rest",
            "category": "cluster:a",
            "binary_labels": [True],
            "anonymized_physician_ids": ["P1"],
            "prompt_id": "p",
            "completion_id": "c",
        }
        args = ["meta-eval", "--grader", "openai:g"]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n" + write_line(row) + "\n")
    result = cli.run(*args, "--data", str(data), "--grader-base-url", "http://127.0.0.1:9/v1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    bad = "'Assistant'" if command == "healthbench" else "'model'"
    field = "prompt.1.role"
    assert result.stderr.strip().splitlines() == [
        f"error: {data}:2: {field}: role {bad} is not one of system, developer, user, assistant"
    ]
