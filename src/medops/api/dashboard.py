"""What the dashboard shows (``medops.web``): plain data read from the store, built on the runs API."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from medops.api.runs import StoreRef, compare, open_store, runs
from medops.audit import AuditSubscriber, record, verify
from medops.audit.trail import events as trail_events
from medops.content import map_text
from medops.datasets.hub import HUB_EXAMS
from medops.datasets.registry import BUILTIN_DATASETS, PACKAGED_DATASETS
from medops.errors import NotFound, UserError
from medops.evaluation.results import report_items, run_document
from medops.models.spec import parse_model_spec
from medops.monitor.canary import canary_config, run_canary
from medops.monitor.drift import drift_table
from medops.monitor.windows import parse_duration
from medops.reports.plots import bars, histogram, time_series
from medops.store.alerts import acknowledge
from medops.store.alerts import alerts as alert_history
from medops.store.repository import Store, effective_status
from medops.store.schema import Run
from medops.store.scores import scores as monitor_scores

Z95 = 1.959963984540054  # a bootstrap std as an approximate 95% interval (normal approximation)
EXAMPLE_FLAGS = ("all", "failed", "negative_met", "ungraded")


def _moment(value: str | datetime | None, *, end: bool = False) -> datetime | None:
    """A date (``2025-05-07``: the whole day), an ISO time, or a datetime; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UserError(f"'{value}': expected a date (2025-05-07) or an ISO time") from None
        if end and len(text) == 10:  # a date: up to the end of that day
            if moment.date() == datetime.max.date():
                return None  # the end of the last day there is: no upper bound (not an overflow)
            moment += timedelta(days=1)
        value = moment
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def runs_filtered(
    db: StoreRef = None,
    *,
    benchmark: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
    status: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    search: str | None = None,
) -> list[dict[str, Any]]:
    """``runs`` newest first, narrowed: exact benchmark / model / dataset / status, created in
    ``[since, until]`` (dates or ISO times), and ``search`` (case-insensitive) in the run's id,
    name, benchmark, dataset, model or grader."""
    start, end = _moment(since), _moment(until, end=True)
    needle = (search or "").strip().casefold()
    chosen = []
    for row in reversed(runs(db)):
        created = datetime.fromisoformat(row["created_at"])  # aware: the store reads back UTC
        if benchmark and row["benchmark"] != benchmark:
            continue
        if model and row["model"] != model:
            continue
        if dataset and row["dataset"] != dataset:
            continue
        if status and row["status"] != status:
            continue
        if (start and created < start) or (end and created >= end):
            continue
        fields = (str(row["run_id"]), row["name"], row["benchmark"], row["dataset"], row["model"], row["grader"])
        if needle and not any(needle in (f or "").casefold() for f in fields):
            continue
        chosen.append(row)
    return chosen


def _interval(metric: dict[str, Any]) -> tuple[float | None, float | None]:
    if "ci95_low" in metric:  # exam accuracies: Wilson intervals
        return metric["ci95_low"], metric["ci95_high"]
    std = metric.get("bootstrap_std")
    mean = metric.get("mean")
    if mean is None or std is None:
        return None, None
    floor, ceiling = min(0.0, mean), max(1.0, mean)  # scores are shares: the interval stays in [0, 1]
    return max(floor, mean - Z95 * std), min(ceiling, mean + Z95 * std)


def run_detail(run_ref: str, *, db: StoreRef = None) -> dict[str, Any]:
    """A run for the dashboard: its document (``run``), each metric with a 95% interval (Wilson
    for exam accuracies, mean ± 1.96 bootstrap std otherwise), and the report's SVG charts (themes,
    axes and example scores; exam breakdowns). The charts' text is escaped by the plot helpers."""
    store = open_store(db)
    document = run_document(store, run_ref)
    metrics = []
    for name, m in (document.get("metrics") or (document.get("summary") or {}).get("metrics") or {}).items():
        if not isinstance(m, dict):
            continue
        low, high = _interval(m)
        metrics.append(
            {
                "name": name,
                "mean": m.get("mean"),
                "ci95_low": low,
                "ci95_high": high,
                "bootstrap_std": m.get("bootstrap_std"),
                "n": m.get("n_samples"),
            }
        )
    charts: list[str] = []
    found = {m["name"]: m for m in metrics}
    if document["benchmark"] == "mcqa":
        rows = [(n, m["mean"], m.get("bootstrap_std") or 0.0) for n, m in found.items() if m["mean"] is not None]
        charts.append(bars("Accuracy by breakdown (± bootstrap std)", rows))
    elif document["benchmark"] in ("healthbench", "meta-eval"):
        titles = (("theme:", "Score by theme (± bootstrap std)"), ("axis:", "Score by axis (± bootstrap std)"))
        for prefix, title in titles:
            rows = [
                (n.removeprefix(prefix), m["mean"], m.get("bootstrap_std") or 0.0)
                for n, m in found.items()
                if n.startswith(prefix) and m["mean"] is not None
            ]
            charts.append(bars(title, rows))
        if document["benchmark"] == "healthbench":
            run = store.find_run(run_ref)
            examples = _run_items(store, run).get("examples", [])
            scores = [e["score"] for e in examples if e["score"] is not None and not e["ungraded"]]
            charts.append(histogram("Example scores (unclipped)", scores))
    return {"run": document, "metrics": metrics, "charts": [c for c in charts if c]}


class _Hidden:
    """Stands in for a Redactor when PHI detection cannot run: nothing is shown (fail closed)."""

    def redact(self, text: str) -> str:
        return "[hidden: PHI redaction is not available on this server]"


def _redactor() -> Any:
    from medops.privacy import PhiUnavailable, Redactor, missing_components

    try:
        return _Hidden() if missing_components() else Redactor()
    except PhiUnavailable:
        return _Hidden()


def _redact_text(redactor: Any, value: Any) -> Any:
    return map_text(value, redactor.redact, _withheld)  # a string, or content parts


def _withheld(part: dict[str, Any]) -> dict[str, Any]:
    """An image cannot be redacted: below admin it is not shown at all."""
    return {"type": part.get("type"), "withheld": True}


def _redacted_example(example: dict[str, Any]) -> dict[str, Any]:
    """One conversation's texts with PHI replaced by consistent placeholders (one Redactor per example)."""
    r = _redactor()
    out = dict(example)
    if "prompt" in example:  # a rubric example
        out["prompt"] = [{**turn, "content": _redact_text(r, turn.get("content"))} for turn in example["prompt"]]
        out["response"] = _redact_text(r, example.get("response"))
        out["error"] = _redact_text(r, example.get("error"))
        out["criteria"] = [
            {**c, "text": _redact_text(r, c["text"]), "explanation": _redact_text(r, c.get("explanation"))}
            for c in example["criteria"]
        ]
    else:  # a wrong exam answer
        out["question"] = _redact_text(r, example.get("question"))
        out["options"] = {k: _redact_text(r, v) for k, v in (example.get("options") or {}).items()}
        out["response"] = _redact_text(r, example.get("response"))
    out["redacted"] = True
    return out


# A finished run's items never change (a resume sets finished_at anew), so the pages of a large
# run are built from its rows once, not on every click: a few runs per server process.
_ITEMS_CACHE: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_ITEMS_CACHE_RUNS = 4
_ITEMS_LOCK = threading.Lock()


def _run_items(store: Store, run: Run) -> dict[str, Any]:
    """``report_items`` of a run, kept for finished runs (keyed by store, run, status and end time)."""
    if run.finished_at is None:  # running (or being resumed): always read afresh
        return report_items(store, run)
    key = (str(store.engine.url), run.id, run.status, run.finished_at)
    with _ITEMS_LOCK:
        if key in _ITEMS_CACHE:
            _ITEMS_CACHE.move_to_end(key)
            return _ITEMS_CACHE[key]
    items = report_items(store, run)
    with _ITEMS_LOCK:
        _ITEMS_CACHE[key] = items
        while len(_ITEMS_CACHE) > _ITEMS_CACHE_RUNS:
            _ITEMS_CACHE.popitem(last=False)
    return items


def _example_items(store: Store, run_ref: str) -> tuple[str, list[dict[str, Any]]]:
    items = _run_items(store, store.find_run(run_ref))
    if "examples" in items:
        return "rubric", items["examples"]
    if "wrong" in items:
        return "exam", [{"index": i, "repeat": 0, **w} for i, w in enumerate(items["wrong"])]
    return "none", []


def _flagged(example: dict[str, Any], flag: str) -> bool:
    return flag == "all" or bool(example.get(flag))


def run_examples(
    run_ref: str,
    *,
    db: StoreRef = None,
    redact: bool = True,
    flag: str = "all",
    offset: int = 0,
    limit: int = 50,
    actor: str | None = None,
) -> dict[str, Any]:
    """A page of a run's examples with their conversation, response and each criterion's verdict
    (rubric runs), or of its wrong answers with the rule that read them (exam runs). ``flag``:
    all, failed (a positive criterion unmet), negative_met, ungraded. With ``redact`` (every role
    but admin) PHI in every text is replaced by placeholders; an unredacted page is recorded in the
    audit trail (``examples.viewed``, by ``actor``)."""
    if flag not in EXAMPLE_FLAGS:
        raise UserError(f"unknown filter '{flag}': expected one of {', '.join(EXAMPLE_FLAGS)}")
    store = open_store(db)
    kind, examples = _example_items(store, run_ref)
    counts = {f: sum(_flagged(e, f) for e in examples) for f in EXAMPLE_FLAGS} if kind == "rubric" else {}
    chosen = [e for e in examples if _flagged(e, flag)]
    page = chosen[max(offset, 0) : max(offset, 0) + max(limit, 0)]
    if redact:
        page = [_redacted_example(e) for e in page]
    elif page:
        _viewed(store, run_ref, [(e["index"], e["repeat"]) for e in page], actor)
    return {
        "kind": kind,
        "flag": flag,
        "total": len(chosen),
        "counts": counts,
        "offset": offset,
        "limit": limit,
        "redacted": redact,
        "examples": page,
    }


def run_example(
    run_ref: str, index: int, *, repeat: int = 0, db: StoreRef = None, redact: bool = True, actor: str | None = None
) -> dict[str, Any]:
    """One example of a run (as in ``run_examples``), by its position in the data and repeat, with
    ``previous`` and ``next`` (``{"index", "repeat"}`` of its neighbours, or None) for paging."""
    store = open_store(db)
    _kind, examples = _example_items(store, run_ref)
    keys = [(e["index"], e["repeat"]) for e in examples]
    if (index, repeat) not in keys:
        raise NotFound(f"run '{run_ref}' has no example {index} (repeat {repeat})")
    at = keys.index((index, repeat))
    found = examples[at]
    if redact:
        shown = _redacted_example(found)
    else:
        _viewed(store, run_ref, [(index, repeat)], actor)
        shown = {**found, "redacted": False}

    def neighbour(i: int) -> dict[str, int] | None:
        return {"index": keys[i][0], "repeat": keys[i][1]} if 0 <= i < len(keys) else None

    return {**shown, "previous": neighbour(at - 1), "next": neighbour(at + 1), "position": at + 1, "of": len(keys)}


def _viewed(store: Store, run_ref: str, keys: list[tuple[int, int]], actor: str | None) -> None:
    run_id = store.find_run(run_ref).id
    details = {"run_id": run_id, "examples": [list(k) for k in keys][:100], "count": len(keys)}
    record(store, "examples.viewed", f"run:{run_id}", details, actor=actor)


def gate_history(*, db: StoreRef = None, run_ref: str | None = None) -> list[dict[str, Any]]:
    """Every recorded gate decision, newest first (from the audit trail's ``gate.decision`` events):
    when, by whom, the run and baseline, passed, and each rule with its outcome."""
    store = open_store(db)
    wanted = store.find_run(run_ref).id if run_ref is not None else None
    names = {row["run_id"]: row["name"] for row in runs(store)}
    history = []
    for event in reversed(trail_events(store)):
        if event["action"] != "gate.decision":
            continue
        d = event["details"]
        if wanted is not None and d.get("run_id") != wanted:
            continue
        history.append(
            {
                "seq": event["seq"],
                "time": _iso(event["time"]),
                "actor": event["actor"],
                "run_id": d.get("run_id"),
                "run_name": names.get(d.get("run_id")),
                "baseline_run_id": d.get("baseline_run_id"),
                "baseline_name": names.get(d.get("baseline_run_id")),
                "policy_file": d.get("policy_file"),
                "passed": d.get("passed"),
                "rules": d.get("rules") or [],
            }
        )
    return history


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def datasets(*, db: StoreRef = None) -> list[dict[str, Any]]:
    """Every dataset content (by sha256) runs used: its names and files, size, rows, and the runs."""
    store = open_store(db)
    found: dict[str, dict[str, Any]] = {}
    for run_row, dataset in store.list_runs():
        entry = found.setdefault(
            dataset.sha256,
            {
                "sha256": dataset.sha256,
                "names": [],
                "files": [],
                "n_rows": dataset.n_examples,
                "size_bytes": dataset.size_bytes,
                "first_seen": _iso(dataset.created_at),
                "runs": [],
            },
        )
        if dataset.name not in entry["names"]:
            entry["names"].append(dataset.name)
        if Path(dataset.path).name not in entry["files"]:
            entry["files"].append(Path(dataset.path).name)
        entry["runs"].append(
            {
                "run_id": run_row.id,
                "name": run_row.name,
                "benchmark": run_row.benchmark,
                "status": effective_status(run_row),
                "model": run_row.model,
                "score": (run_row.summary or {}).get("score"),
                "created_at": _iso(run_row.created_at),
            }
        )
    return sorted(found.values(), key=lambda d: d["runs"][-1]["run_id"], reverse=True)


def alerts(
    *, db: StoreRef = None, since: str | datetime | None = None, limit: int | None = 200
) -> list[dict[str, Any]]:
    """Fired monitor alerts, newest first, with who acknowledged them and when."""
    return [
        {
            "id": a.id,
            "created_at": _iso(a.created_at),
            "rule": a.rule,
            "key": a.key,
            "severity": a.severity,
            "message": a.message,
            "details": a.details or {},
            "deliveries": a.deliveries or [],
            "acknowledged_at": _iso(a.acknowledged_at),
            "acknowledged_by": a.acknowledged_by,
        }
        for a in alert_history(open_store(db), since=_moment(since), limit=limit)
    ]


def acknowledge_alert(db: StoreRef, alert_id: int, *, actor: str) -> None:
    """Mark an alert seen by ``actor`` (the first acknowledgement stands); audited as ``alert.acknowledged``."""
    store = open_store(db)
    if not acknowledge(store, alert_id, by=actor):
        raise NotFound(f"no alert {alert_id} (medops monitor alerts lists them)")
    record(store, "alert.acknowledged", f"alert:{alert_id}", {"alert_id": alert_id}, actor=actor)


def monitoring(
    *, db: StoreRef = None, since: str | datetime | None = None, window: str = "1d", reference: str = "7d"
) -> dict[str, Any]:
    """Production at a glance: every online / canary score series (points oldest first, each
    marked ``drop`` when a canary round was significantly worse than its baseline), the alerts,
    the drift table of the last ``window`` against the ``reference`` before it, and a chart (SVG)
    of each headline series (overall score, accuracy) with the alerts marked."""
    store = open_store(db)
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for point in monitor_scores(store, since=_moment(since)):
        if point.source not in ("online", "canary"):
            continue
        details = point.details or {}
        series.setdefault((point.source, point.tag, point.metric), []).append(
            {
                "window_start": _iso(point.window_start),
                "window_end": _iso(point.window_end),
                "value": point.value,
                "n": point.n,
                "run_id": point.run_id,
                "baseline_run_id": details.get("baseline_run_id"),
                "difference": details.get("difference"),
                "p_holm": details.get("p_holm"),
                "drop": bool(details.get("significant")) and (details.get("difference") or 0) < 0,
            }
        )
    drift = drift_table(store, window=parse_duration(window), reference=parse_duration(reference), min_samples=20)
    fired = alerts(db=store)
    alert_times = [a["created_at"] for a in fired if a["created_at"]]
    charts = [  # the headline series, with the alerts as markers
        time_series(f"{source} · {metric} · {tag}", points, alert_times)
        for (source, tag, metric), points in sorted(series.items())
        if metric in ("overall_score", "accuracy")
    ]
    return {
        "series": [
            {"source": source, "tag": tag, "metric": metric, "points": points}
            for (source, tag, metric), points in sorted(series.items())
        ],
        "alerts": fired,
        "drift": drift,
        "charts": [c for c in charts if c],
    }


def audit_events(*, db: StoreRef = None, last: int | None = 500, action: str | None = None) -> dict[str, Any]:
    """The audit trail's newest events (newest first; ``action`` narrows by prefix, e.g. ``user.``)
    and the verification of the whole chain."""
    store = open_store(db)
    chosen = [
        {**e, "time": _iso(e["time"])}
        for e in reversed(trail_events(store, last=None if action else last))
        if action is None or e["action"].startswith(action)
    ]
    return {"verification": verify(store).to_dict(), "events": chosen[:last] if last else chosen}


BASE_URLS_ENV = "MEDOPS_CANARY_BASE_URLS"  # comma-separated
DATA_DIRS_ENV = "MEDOPS_CANARY_DATA_DIRS"  # os.pathsep-separated, like PATH


def _allowed_base_urls() -> set[str]:
    named = [os.environ.get("MEDOPS_MODEL_BASE_URL"), os.environ.get("MEDOPS_GRADER_BASE_URL")]
    named += os.environ.get(BASE_URLS_ENV, "").split(",")
    return {url.strip().rstrip("/") for url in named if url and url.strip()}


def _allowed_data(data: str) -> str:
    """A built-in set's name as is, or the resolved path of a file under a canary data folder."""
    if data in PACKAGED_DATASETS or data in BUILTIN_DATASETS or data in HUB_EXAMS:
        return data
    folders = [Path(f).resolve() for f in os.environ.get(DATA_DIRS_ENV, "").split(os.pathsep) if f.strip()]
    path = Path(data).resolve()  # symlinks and .. resolved before the check
    if path.is_file() and any(path.is_relative_to(folder) for folder in folders):
        return str(path)
    # the same answer whether the file exists or not: no probing of the server's disk
    raise UserError(
        f"data '{data}': the dashboard runs built-in sets ({', '.join(PACKAGED_DATASETS)}, ...) and files "
        f"under {DATA_DIRS_ENV} only"
    )


def check_canary(chosen: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a canary round an operator asks for from the dashboard, when this server
    allows them (data resolved); a UserError otherwise. Narrower than ``medops monitor canary``:
    the server decides where data comes from and where it goes. Data is a built-in set name or a
    file under ``MEDOPS_CANARY_DATA_DIRS``; base URLs are ones the server was configured with
    (``MEDOPS_CANARY_BASE_URLS``, ``MEDOPS_MODEL_BASE_URL``, ``MEDOPS_GRADER_BASE_URL``), since the
    server's API key goes wherever the base URL points; models are HTTP endpoints, never in
    process. See docs/DASHBOARD.md."""
    for role in ("model", "grader"):
        spec = chosen.get(role)
        if spec and parse_model_spec(spec, what=role).capabilities.in_process:
            raise UserError(
                f"{role} '{spec}': canary rounds from the dashboard call HTTP endpoints only "
                "(in-process models: medops monitor canary)"
            )
        url = chosen.get(f"{role}_base_url")
        if url and url.strip().rstrip("/") not in _allowed_base_urls():
            raise UserError(
                f"{role} base URL: not one this server is configured for "
                f"({BASE_URLS_ENV}, MEDOPS_MODEL_BASE_URL, MEDOPS_GRADER_BASE_URL)"
            )
    return {**chosen, "data": _allowed_data(chosen["data"])}


def canary(
    *,
    data: str,
    model: str,
    grader: str | None = None,
    task: str | None = None,
    baseline: str | None = None,
    model_base_url: str | None = None,
    grader_base_url: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    db: StoreRef = None,
    actor: str | None = None,
    on_started: Callable[[int], None] | None = None,
    run_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One canary round (``medops monitor canary``): run the fixed evaluation against the live
    endpoint, compare it with ``baseline`` (default: the previous canary run), store the scores.
    Endpoints default to ``MEDOPS_MODEL_BASE_URL`` / ``MEDOPS_GRADER_BASE_URL``; the run is audited
    as ``actor``'s; ``on_started`` gets the new run's id as soon as it exists."""
    store = open_store(db)
    config = canary_config(
        data=data,
        model=model,
        task=task or None,
        grader=grader or None,
        model_base_url=model_base_url or os.environ.get("MEDOPS_MODEL_BASE_URL"),
        grader_base_url=grader_base_url or os.environ.get("MEDOPS_GRADER_BASE_URL"),
        seed=seed,
        run_options={"limit": limit, "no_cache": True, **(run_options or {})},
    )
    subscribers: list[object] = [AuditSubscriber(store, actor=actor)]
    if on_started is not None:
        subscribers.append(_StartedHook(on_started))
    outcome = run_canary(store, config, baseline=baseline or None, seed=seed, subscribers=subscribers)
    return outcome.to_dict()


class _StartedHook:
    def __init__(self, callback: Callable[[int], None]):
        self.callback = callback

    def on_run_started(self, event: Any) -> None:
        self.callback(event.run_id)


def compare_detail(baseline: str, candidate: str, *, db: StoreRef = None, seed: int = 0) -> dict[str, Any]:
    """``compare`` plus the report's chart of the paired differences (candidate - baseline, 95% CI)."""
    report = compare(baseline, candidate, db=db, seed=seed)
    rows = [(name, r["difference"], (r["ci95_high"] - r["ci95_low"]) / 2) for name, r in report["metrics"].items()]
    chart = bars("Paired difference, candidate - baseline (95% CI)", rows, lo=-1.0, hi=1.0, zero_line=True)
    return {"comparison": report, "chart": chart}
