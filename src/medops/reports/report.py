"""``medops report``: one self-contained HTML file (or a Markdown summary) for a stored run.

Everything in the page comes from the run and its dataset, which are untrusted (model output,
patient text): Jinja2 autoescapes every value, and a Content-Security-Policy allows only the
page's own inline style and its one inline script (pinned by hash), so nothing injected can run
and nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.resources import files
from typing import Any

from jinja2 import Environment, select_autoescape

from medops import __version__
from medops.content import data_uri, digests
from medops.datasets.images import thumbnail
from medops.evaluation.prepared_views import prepared_records
from medops.evaluation.records import Bars, Histogram, Reliability, SampleRecord, Samples, ordered_metrics, text_of
from medops.evaluation.results import Presentation, presentation, sample_records
from medops.models.pricing import load_prices, run_cost
from medops.ops.compare import compare_runs
from medops.reports.plots import bars, counterfactual_chart, histogram, reliability
from medops.review.bias import run_bias
from medops.review.calibrated import calibrated
from medops.store import queries
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
    env.filters["signed"] = lambda v: "-" if v is None else f"{v:+.3f}"
    env.filters["text"] = text_of  # a message's content as text, whatever its parts
    env.filters["images"] = digests  # the digests of its images (records carry sha256:<hex>)
    # a record's readings (no points: an exam answer read by a rule) and criteria (rubric items), in
    # order; as selectattr/rejectattr("points", "none") but a fifth of the cost over 5,000 samples
    env.filters["readings"] = lambda assessments: [a for a in assessments if a.points is None]
    env.filters["criteria"] = lambda assessments: [a for a in assessments if a.points is not None]
    return env


def _plots(
    summary: dict[str, Any],
    found: Presentation,
    records: Callable[[], list[SampleRecord]],
    ready: dict[str, Any] | None = None,
) -> list[str]:
    """The charts the run's benchmark declares, in order; histograms from the run's prepared
    summary (``ready``) when there is one, which holds each one's values in order."""
    plots, metrics = [], summary.get("metrics", {})
    values = iter(ready["histograms"]) if ready is not None else None
    for view in found.views:
        if isinstance(view, Bars):
            plots.append(bars(view.title, found.group(view.group).rows(metrics)))
        elif isinstance(view, Histogram):
            plots.append(histogram(view.title, next(values) if values is not None else view.values(records())))
        elif isinstance(view, Reliability):
            plots.append(reliability(view.title, *view.of(summary)))
    return plots


def _counterfactual_plot(summary: dict[str, Any]) -> list[str]:
    return [counterfactual_chart(summary.get("counterfactual"))]


def _sample_lists(
    found: Presentation,
    records: Callable[[], list[SampleRecord]],
    ready: tuple[dict[str, Any], list[SampleRecord]] | None = None,
) -> list[dict[str, Any]]:
    """Each declared sample list: its records and how many carry each of its flags; the run's
    prepared samples and counts (``ready``) when there are, which are its one list's."""
    lists = []
    for view in found.views:
        if isinstance(view, Samples):
            if ready is not None:
                prepared, chosen = ready
                counts = {f.key: prepared["counts"][f.key] for f in view.flags}
            else:
                chosen = view.chosen(records())
                counts = {f.key: sum(f.key in r.flags for r in chosen) for f in view.flags}
            lists.append({"view": view, "records": chosen, "counts": counts})
    return lists


def _ready(store: Store, run: Any, found: Presentation) -> tuple[dict[str, Any], list[SampleRecord]] | None:
    """The run's prepared summary and samples (evaluation/prepared_views.py: kept as the run ended,
    or by its first view), which give the report the same charts and lists as its rows do without
    reading them all; None when there are none current, or the run declares more than one sample
    list (only the first is prepared): the report then reads the rows. A report never prepares."""
    if sum(isinstance(v, Samples) for v in found.views) != 1:
        return None
    return prepared_records(store, run)


def _thumbnails(store: Store) -> Callable[[str], dict[str, Any]]:
    """A stored image (by digest) as a small embedded thumbnail: ``src`` (a data: URI, so the
    page stays self-contained and fetches nothing), ``width``, ``height``; each made once."""
    made: dict[str, dict[str, Any]] = {}

    def thumbnail_of(sha256: str) -> dict[str, Any]:
        if sha256 not in made:
            media_type, small, width, height = thumbnail(queries.blob(store, sha256)[1])
            made[sha256] = {"src": data_uri(small, media_type), "width": width, "height": height}
        return made[sha256]

    return thumbnail_of


def build_report(store: Store, run_ref: str, *, vs: str | None = None, fmt: str = "html") -> str:
    run = store.find_run(run_ref)
    dataset = store.dataset(run.dataset_id)
    summary = run.summary or {}
    metrics = summary.get("metrics", {})
    comparison = compare_runs(store, vs, run_ref) if vs else None
    found = presentation(run)
    ready = _ready(store, run, found) if fmt == "html" else None
    read: list[list[SampleRecord]] = []

    def records() -> list[SampleRecord]:  # read once, and only when a view needs them
        if not read:
            read.append(sample_records(store, run))
        return read[0]

    context: dict[str, Any] = {
        "run": run,
        "status": effective_status(run),
        "dataset": dataset,
        "summary": summary,
        "metrics": metrics,
        "metric_rows": ordered_metrics(metrics, found.metric_groups),
        "headline": found.headline,
        "version": __version__,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cost": run_cost(run, load_prices()),
        "comparison": comparison,
        "calibrated": calibrated(store, run),
        "bias": run_bias(store, run),
        "plots": (
            _plots(summary, found, records, ready[0] if ready else None) + _counterfactual_plot(summary)
            if fmt == "html"
            else []
        ),
        "samples": _sample_lists(found, records, ready) if fmt == "html" else [],
        "thumbnail": _thumbnails(store),
    }
    if comparison:
        rows = [
            (name, r["difference"], (r["ci95_high"] - r["ci95_low"]) / 2) for name, r in comparison["metrics"].items()
        ]
        context["plots"].append(bars("Paired difference vs baseline (95% CI)", rows, lo=-1.0, hi=1.0, zero_line=True))
    context["plots"] = [p for p in context["plots"] if p]
    template = files("medops.reports").joinpath("templates", f"report.{fmt}.j2").read_text("utf-8")
    env = _environment(fmt == "html")
    return env.from_string(template).render(**context, script=FILTER_SCRIPT, script_hash=_script_hash(FILTER_SCRIPT))
