"""One answer rule: every completion of the extraction table gets the same verdict from
``medops eval mcqa``'s reading and from medops.rewards, as TRL and verl call them on the files
``medops data export`` and ``medops rl prepare`` write."""

from __future__ import annotations

import json

import pytest

from conftest import write_jsonl
from medops.datasets.mcqa import load_mcqa
from medops.rewards import accuracy_reward, compute_score
from medops.scoring.extract import extract_choice
from scoring.test_extract import QUESTIONS, TABLE

pytest.importorskip("datasets")
pytest.importorskip("pyarrow")

LETTERS = "ABCDE"


def _exam(tmp_path):
    """One exam item per table case (generic layout), with that case's options; gold is irrelevant here."""
    rows = [
        {"question": f"Case {i}: which option?", "options": QUESTIONS[question], "answer_idx": "A"}
        for i, (_, _, question) in enumerate(TABLE)
    ]
    return write_jsonl(tmp_path / "table.jsonl", rows)


def _read_back(verdicts: dict[str, list[float]], n: int) -> list[str | None]:
    """The letter a reward credits, from its verdict under every possible gold letter (None: none)."""
    read = []
    for i in range(n):
        credited = [letter for letter in LETTERS if verdicts[letter][i] == 1.0]
        assert len(credited) <= 1 and all(verdicts[letter][i] in (0.0, 1.0) for letter in LETTERS)
        read.append(credited[0] if credited else None)
    return read


def _trl(rows: list[dict], completions: list) -> list[str | None]:
    """As GRPOTrainer calls a reward: every dataset column but the prompt, one value per completion."""
    from datasets import Dataset

    dataset = Dataset.from_list(rows)  # what `medops rl train` builds; Arrow unifies the options' keys
    inputs = [dataset[i] for i in range(len(dataset))]
    kwargs = {key: [row[key] for row in inputs] for key in inputs[0] if key not in ("prompt", "completion")}
    verdicts = {
        letter: accuracy_reward(
            prompts=[row["prompt"] for row in inputs],
            completions=completions,
            **kwargs | {"answer": [letter] * len(inputs)},
        )
        for letter in LETTERS
    }
    return _read_back(verdicts, len(inputs))


def test_eval_trl_and_verl_give_identical_verdicts_on_the_whole_table(cli, tmp_path):
    exam_file = _exam(tmp_path)
    items = load_mcqa("generic", exam_file).items
    texts = [text for text, _, _ in TABLE]
    # medops eval mcqa: extract_choice(completion.text, item.letters, item.options)
    evaluated = [
        extract_choice(text, item.letters, item.options).choice for text, item in zip(texts, items, strict=True)
    ]

    trl_file, verl_file, prepared = tmp_path / "trl.jsonl", tmp_path / "verl.parquet", tmp_path / "prepared"
    for fmt, path in (("trl", trl_file), ("verl", verl_file)):
        cli.run(
            "data",
            "export",
            "--task",
            "generic",
            "--data",
            str(exam_file),
            "--format",
            fmt,
            "-o",
            str(path),
            check=True,
        )
    cli.run(
        "rl",
        "prepare",
        "--task",
        "generic",
        "--data",
        str(exam_file),
        "-o",
        str(prepared),
        "--heldout",
        "0",
        check=True,
    )
    exported = [json.loads(line) for line in trl_file.read_text("utf-8").splitlines()]
    prepared_rows = [json.loads(line) for line in (prepared / "train.jsonl").read_text("utf-8").splitlines()]
    assert prepared_rows == exported  # one row builder for both commands
    assert exported[0]["options"] == QUESTIONS[TABLE[0][2]] and exported[0]["letters"] == "".join(
        QUESTIONS[TABLE[0][2]]
    )

    # TRL: plain strings and chat messages, options from the dataset columns
    conversational = [[{"role": "assistant", "content": text}] if i % 2 else text for i, text in enumerate(texts)]
    by_trl = _trl(exported, conversational)

    # verl: compute_score(data_source, solution_str, ground_truth, extra_info) on the parquet rows, read as verl does
    from datasets import Dataset

    records = Dataset.from_parquet(str(verl_file))
    pqa = next(i for i, (_, _, question) in enumerate(TABLE) if question == "pqa")
    assert records[pqa]["extra_info"]["options"]["D"] is None  # Arrow's union of keys: dropped by the reward
    by_verl = _read_back(
        {
            letter: [
                compute_score(record["data_source"], text, letter, record["extra_info"])
                for record, text in zip(records, texts, strict=True)
            ]
            for letter in LETTERS
        },
        len(texts),
    )
    disagreements = [
        (text, e, t, v) for text, e, t, v in zip(texts, evaluated, by_trl, by_verl, strict=True) if not e == t == v
    ]
    assert disagreements == []
    assert sum(e is not None for e in evaluated) > len(TABLE) // 2  # the comparison is about real readings
    option_text_read = [
        e
        for (text, _, _), e in zip(TABLE, evaluated, strict=True)
        if e and extract_choice(text, LETTERS).choice is None
    ]
    assert len(option_text_read) >= 30  # read only through the options the rows carry (texts, yes/no/maybe)


def test_rewards_without_options_read_letters_only():
    """Rows written before options travelled: letters, numbers and circled numbers still count."""
    completions = ["The answer is Metformin", "정답: ②", "\\boxed{C}", "A or B"]
    assert accuracy_reward(completions=completions, answer=["A", "B", "C", "A"], letters=["ABCDE"] * 4) == [0, 1, 1, 0]
    with_options = {"A": "Metformin", "B": "Insulin glargine", "C": "Sitagliptin"}
    assert accuracy_reward(completions=completions[:1], answer=["A"], options=[with_options]) == [1.0]
    assert (
        compute_score(
            "medops/pubmedqa",
            "Answer: maybe",
            "C",
            {"letters": "ABC", "options": {"A": "yes", "B": "no", "C": "maybe"}},
        )
        == 1.0
    )
    assert compute_score("medops/pubmedqa", "Answer: maybe", "C", {"letters": "ABC"}) == 0.0
