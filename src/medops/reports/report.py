"""``medops report``: one self-contained HTML file (or a Markdown summary) for a stored run.

Everything in the page comes from the run and its dataset, which are untrusted (model output,
patient text): Jinja2 autoescapes every value, and a Content-Security-Policy allows only the
page's own inline style and its one inline script (pinned by hash), so nothing injected can run
and nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from importlib.resources import files
from typing import Any

from jinja2 import Environment, select_autoescape

from medops import __version__
from medops.evaluation.results import report_items
from medops.models.pricing import load_prices, run_cost
from medops.ops.compare import compare_runs
from medops.reports.plots import bars, histogram
from medops.store.repository import Store, effective_status

FILTER_SCRIPT = """
document.querySelectorAll('[data-filter]').forEach(function (button) {
  button.addEventListener('click', function () {
    var flag = button.getAttribute('data-filter');
    document.querySelectorAll('[data-filter]').forEach(function (b) { b.classList.remove('on'); });
    button.classList.add('on');
    document.querySelectorAll('.example').forEach(function (el) {
      el.hidden = flag !== 'all' && el.getAttribute('data-' + flag) !== '1';
    });
  });
});
""".strip()


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def _environment(html: bool) -> Environment:
    escape = select_autoescape(default=html, default_for_string=html)
    env = Environment(autoescape=escape, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"
    return env


def _metric_rows(metrics: dict[str, dict], prefix: str) -> list[tuple[str, float, float]]:
    return [
        (name.removeprefix(prefix), m["mean"], m.get("bootstrap_std", 0.0))
        for name, m in metrics.items()
        if name.startswith(prefix)
    ]


def build_report(store: Store, run_ref: str, *, vs: str | None = None, fmt: str = "html") -> str:
    run = store.find_run(run_ref)
    dataset = store.dataset(run.dataset_id)
    summary = run.summary or {}
    metrics = summary.get("metrics", {})
    comparison = compare_runs(store, vs, run_ref) if vs else None
    context: dict[str, Any] = {
        "run": run,
        "status": effective_status(run),
        "dataset": dataset,
        "summary": summary,
        "metrics": metrics,
        "version": __version__,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cost": run_cost(run, load_prices()),
        "comparison": comparison,
        "plots": [],
    }
    items = report_items(store, run)
    context.update(items)
    if "wrong" in items:  # an exam: accuracy breakdowns
        context["plots"].append(
            bars(
                "Accuracy by breakdown (± bootstrap std)",
                [(n, m["mean"], m["bootstrap_std"]) for n, m in metrics.items()],
            )
        )
    if "examples" in items:  # a rubric set: themes, axes and the spread of example scores
        examples = items["examples"]
        context["plots"] += [
            bars("Score by theme (± bootstrap std)", _metric_rows(metrics, "theme:")),
            bars("Score by axis (± bootstrap std)", _metric_rows(metrics, "axis:")),
            histogram(
                "Example scores (unclipped)",
                [e["score"] for e in examples if e["score"] is not None and not e["ungraded"]],
            ),
        ]
    if comparison:
        rows = [
            (name, r["difference"], (r["ci95_high"] - r["ci95_low"]) / 2) for name, r in comparison["metrics"].items()
        ]
        context["plots"].append(bars("Paired difference vs baseline (95% CI)", rows, lo=-1.0, hi=1.0, zero_line=True))
    context["plots"] = [p for p in context["plots"] if p]
    template = files("medops.reports").joinpath("templates", f"report.{fmt}.j2").read_text("utf-8")
    env = _environment(fmt == "html")
    return env.from_string(template).render(**context, script=FILTER_SCRIPT, script_hash=_script_hash(FILTER_SCRIPT))
