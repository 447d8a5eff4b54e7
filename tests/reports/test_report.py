"""Reports: Markdown content, and the HTML page in a real headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO, example, write_jsonl

EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">**bold**'


@pytest.fixture
def runs(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "set.jsonl",
        [
            example(
                "p0",
                [
                    ("Mentions rest {met-if:REST}", 2, ["axis:completeness"]),
                    ("Recommends antibiotics {met-if:ANTIBIOTIC}", -2, ["axis:accuracy"]),
                ],
                text="Fever <b>three</b> days",
                tags=["theme:global_health"],
            ),
            example(
                "p1",
                [
                    ("Mentions rest {met-if:REST}", 2, ["axis:completeness"]),
                    ("Asks about age {grader-malformed:all}", 1, ["axis:context_awareness"]),
                ],
                tags=["theme:hedging"],
            ),
            example("p2", [("Mentions rest {met-if:REST}", 2, ["axis:completeness"])], tags=["theme:hedging"]),
        ],
    )
    for name, texts in (("base", ["REST", "REST", "REST"]), ("cand", [f"REST ANTIBIOTIC {EVIL}", "REST", "nothing"])):
        answers = write_jsonl(tmp_path / f"{name}.jsonl", [{"index": i, "response": t} for i, t in enumerate(texts)])
        result = cli.run(
            "eval",
            "healthbench",
            "--data",
            str(data),
            "--responses",
            str(answers),
            "--grader",
            "openai:fake-grader",
            "--grader-base-url",
            server.base_url,
            "--name",
            name,
            "--grader-parse-retries",
            "0",
        )
        assert result.returncode == 3, result.stderr  # p1's unreadable verdict is a failed call: incomplete
    return tmp_path


def test_markdown_summary(cli, runs):
    text = cli.run("report", "cand", "--vs", "base", "--format", "md", check=True).stdout
    assert text.startswith("### medops · run 2 `cand`") and "| overall_score |" in text
    assert "graded by openai:fake-grader" in text and "cost unpriced" in text
    assert "status incomplete (1 call failed for good, left out of the score)" in text


def test_html_report_in_a_real_browser(cli, runs, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    page_path = tmp_path / "report.html"
    cli.run("report", "cand", "--vs", "base", "-o", str(page_path), check=True)
    html = page_path.read_text()
    assert "<script>window.__pwned" not in html and "&lt;script&gt;window.__pwned" in html
    offline = html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a namespace name, never fetched
    assert "http://" not in offline and "https://" not in offline

    artifacts = Path(REPO / "test-artifacts")
    artifacts.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        problems, requests = [], []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        assert problems == []
        assert all(url.startswith("file://") for url in requests)  # nothing fetched from anywhere else
        assert page.evaluate("window.__pwned") is None  # the response's script and handler did not run
        assert EVIL[:30] in page.inner_text("body")  # ... and it reads as text
        assert page.locator("svg.plot").count() == 4  # themes, axes, score distribution, paired differences
        assert page.locator(".example").count() == 3
        page.click("[data-filter=ungraded]")
        assert page.locator(".example:not([hidden])").count() == 1
        page.click("[data-filter=negmet]")
        assert page.locator(".example:not([hidden])").count() == 1
        page.click("[data-filter=failed]")
        assert page.locator(".example:not([hidden])").count() == 1
        page.click("[data-filter=all]")
        page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        browser.close()
    assert (artifacts / "report.png").stat().st_size > 10_000


def test_mlflow_logging_to_a_local_tracking_store(cli, server, tmp_path):
    pytest.importorskip("mlflow")
    data = write_jsonl(tmp_path / "m.jsonl", [example("a", [("A {met}", 1, ["axis:x"])], tags=["theme:hedging"])])
    store = tmp_path / "mlruns"
    result = cli.run(
        *cli.eval_args(server, data),
        "--mlflow",
        store.as_uri(),
        "--name",
        "logged",
        env={"MLFLOW_ALLOW_FILE_STORE": "true"},
        check=True,
    )
    assert "logged to MLflow" in result.stderr
    import os

    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    client = MlflowClient(store.as_uri())
    experiment = client.get_experiment_by_name("medops")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["overall_score"] == 1.0 and run.data.metrics["theme.hedging"] == 1.0
    assert run.data.params["grader.name"] == "fake-grader" and run.data.tags["medops.run_id"] == "1"
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert artifacts == ["medops-run-1.html"]


def test_markdown_report_lists_every_metric_headline_first(server, tmp_path, monkeypatch):
    """Issue 26: the Markdown table kept the first 20 metrics alphabetically and dropped the rest."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    from medops import api

    rows = [
        example(f"p{i}", [(f"Advises rest {{met}} #{i}", 1, ["axis:completeness"])], tags=[f"theme:t{i:02d}"])
        for i in range(24)
    ]
    data = write_jsonl(tmp_path / "wide.jsonl", rows)
    config = api.healthbench_config(
        data=str(data),
        model="openai:fake-model",
        grader="openai:fake-grader",
        model_base_url=server.base_url,
        grader_base_url=server.base_url,
    )
    db = tmp_path / "medops.db"
    assert api.evaluate(config, db=db, name="wide").status == "completed"
    metrics = api.run("wide", db=db)["metrics"]
    assert len(metrics) == 26  # overall_score, one axis, 24 themes
    text = api.report("wide", db=db, fmt="md")
    table = [line.split(" | ")[0].removeprefix("| ") for line in text.splitlines() if line.startswith("| ")]
    assert table[1:] == ["overall_score", *(f"theme:t{i:02d}" for i in range(24)), "axis:completeness"]
