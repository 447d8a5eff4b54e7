"""Long runs in CI logs: periodic one-line progress on stderr when it is not a terminal."""

from __future__ import annotations

import re

import pytest

from conftest import example, write_jsonl
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

LINE = re.compile(
    r"^progress: run 1: (\d+)/6 jobs \(\d+%\), (\d+) calls \((\d+) cached, (\d+) failed\), \S+ elapsed, ETA \S+$"
)


@pytest.fixture
def slow_server():
    with ServerThread(FakeOpenAIServer(FakeBehaviour(latency_s=0.15))) as running:
        yield running


def progress_lines(stderr: str) -> list[tuple[int, ...]]:
    return [tuple(map(int, m.groups())) for line in stderr.splitlines() if (m := LINE.match(line))]


def test_a_run_logs_progress_lines_to_a_non_terminal_stderr(cli, slow_server, tmp_path):
    data = write_jsonl(
        tmp_path / "set.jsonl",
        [example(f"p{i}", [("Advises rest {met}", 1, [])], text=f"Q{i} {{model-500:1}}") for i in range(6)],
    )
    args = cli.eval_args(slow_server, data, "--concurrency", "1", "--json")
    result = cli.run(*args, env={"MEDOPS_PROGRESS_INTERVAL": "0.3"})
    assert result.returncode == 0, result.stderr
    assert result.json()["score"] == 1.0  # stdout is the JSON document only
    lines = progress_lines(result.stderr)
    assert len(lines) >= 2, result.stderr
    done = [d for d, *_ in lines]
    assert done == sorted(done) and done[-1] <= 6
    # each job: a model call answered 500 once (a retry, one call outcome) and one grader call
    assert all(failed == 0 and cached == 0 and calls <= 12 for _, calls, cached, failed in lines)
    assert lines[-1][1] > lines[0][1]

    quiet = cli.run(*args, "--name", "quiet", "--no-cache", env={"MEDOPS_PROGRESS_INTERVAL": "0"})
    assert quiet.returncode == 0 and "progress:" not in quiet.stderr


def test_a_bad_progress_interval_is_a_one_line_error(cli, slow_server, tmp_path):
    data = write_jsonl(tmp_path / "set.jsonl", [example("p", [("Advises rest {met}", 1, [])])])
    result = cli.run(*cli.eval_args(slow_server, data), env={"MEDOPS_PROGRESS_INTERVAL": "soon"})
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "MEDOPS_PROGRESS_INTERVAL='soon'" in result.stderr
