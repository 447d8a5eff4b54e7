"""Shared fixtures: a loopback OpenAI-compatible server, a store file, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
SECRET = "sk-test-SECRET-do-not-leak-0123456789"


def needs_shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture
def server():
    with ServerThread(FakeOpenAIServer(FakeBehaviour(slow_s=3.0))) as running:
        yield running


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def example(
    prompt_id: str,
    criteria: list[tuple[str, float, list[str]]],
    *,
    text: str = "I have a headache.",
    tags: list[str] | None = None,
    ideal: str | None = None,
) -> dict:
    row = {
        "prompt": [{"role": "user", "content": text}],
        "prompt_id": prompt_id,
        "rubrics": [{"criterion": c, "points": p, "tags": t} for c, p, t in criteria],
        "example_tags": tags if tags is not None else ["theme:global_health"],
    }
    if ideal is not None:
        row["ideal_completions_data"] = {
            "ideal_completion": ideal,
            "ideal_completions_group": "Group 1",
            "ideal_completions_ref_completions": None,
        }
    return row


def run_on_responses(cli: Cli, server, data: Path, texts: list[str], name: str) -> dict:
    """``eval healthbench`` of ``data`` on fixed responses (one per example, in order), graded by the
    loopback server's fake grader, as run ``name``; its --json summary."""
    answers = write_jsonl(
        data.parent / f"{name}.responses.jsonl", [{"index": i, "response": t} for i, t in enumerate(texts)]
    )
    return cli.run(
        "eval", "healthbench", "--data", str(data), "--responses", str(answers), "--grader", "openai:fake-grader",
        "--grader-base-url", server.base_url, "--name", name, "--json", check=True,
    ).json()  # fmt: skip


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@dataclass
class Cli:
    db: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: bool = False, timeout: float = 120, env: dict | None = None, input: str | None = None
    ) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "medops.cli.app", *args],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"medops {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return result

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "medops.cli.app", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def eval_args(self, server: ServerThread, data: Path, *extra: str) -> list[str]:
        return [
            "eval",
            "healthbench",
            "--data",
            str(data),
            "--model",
            "openai:fake-model",
            "--grader",
            "openai:fake-grader",
            "--model-base-url",
            server.base_url,
            "--grader-base-url",
            server.base_url,
            "--retry-base-delay",
            "0.05",
            *extra,
        ]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One converted SmolLM2 checkpoint for the whole test session (the conversion takes ~25 s)."""
    return Path(os.environ.get("MEDOPS_TEST_MODEL_CACHE") or tmp_path_factory.mktemp("models"))


@pytest.fixture
def cli(tmp_path: Path, model_cache: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDOPS_"))}
    env.update(
        {
            "OPENAI_API_KEY": SECRET,
            "MEDOPS_DB": str(tmp_path / "medops.db"),
            "MEDOPS_CACHE_DIR": str(tmp_path / "cache"),
            "MEDOPS_MODEL_CACHE": str(model_cache),
            "HF_HUB_OFFLINE": "1",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
    )
    return Cli(tmp_path / "medops.db", env)
