"""What a benchmark provides, in one place. Everything generic about runs (create, resume, budget,
events, storage of items and plans, exit status) lives in ``evaluation.lifecycle``; everything a
benchmark knows (its items, jobs, pipeline, scoring and documents) lives in one module that
implements :class:`Benchmark` and is registered in ``evaluation.registry``. A stored run reads
back as one :class:`~medops.evaluation.records.SampleRecord` per item, and the benchmark declares
what views show of them (charts, sample lists, export columns) as data.

A benchmark's *data* is whatever its loader returns (a rubric set, an exam): it must have
``name``, ``facts`` (a :class:`~medops.datasets.jsonl.FileFacts`) and a length. Its items are
stored in the run store once, as JSON records, so a run stays usable without its source file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from rich.console import Console

from medops.errors import UserError
from medops.evaluation.config import RunSettings
from medops.evaluation.engine import Counters, Job, JobRunner
from medops.evaluation.records import ExportSpec, Headline, MetricGroup, SampleRecord, View
from medops.events import EventBus
from medops.store import queries
from medops.store.repository import Store
from medops.store.schema import Dataset, Run
from medops.store.writer import StoreWriter

C = TypeVar("C", bound=RunSettings)
D = TypeVar("D")


@dataclass
class RunContext(Generic[C, D]):
    """What a pipeline is built from: the run, its settings and data, and where results go."""

    run_id: int
    config: C
    data: D
    store: Store
    writer: StoreWriter
    resumed: bool
    bus: EventBus
    counters: Counters = field(default_factory=Counters)
    on_progress: Callable[[Counters], None] | None = None


@dataclass
class ItemResults:
    """Per-item metric values of a stored run, for paired comparison and gates."""

    binary: bool  # right/wrong items (exam): McNemar instead of a sign-flip test
    # (item index, repeat) -> metric name -> value; only items the run scored
    values: dict[Job, dict[str, float]]
    ids: list[str]  # item id by position, to pair runs made on different files


class Benchmark(ABC, Generic[C, D]):
    """One benchmark: subclass, implement, and add one line to ``evaluation.registry``."""

    name: ClassVar[str]  # the runs.benchmark value
    command: ClassVar[str]  # the command that runs it, for resume hints
    config_type: ClassVar[type[RunSettings]]
    # the run measures its grader (against physicians) rather than a model: no "demo grader" note
    measures_grader: ClassVar[bool] = False
    # what views show of its runs, as data (evaluation.records): no view knows a benchmark
    headline: ClassVar[Headline]  # "N examples, X excluded ..."
    export: ClassVar[ExportSpec]  # medops export's rows and columns
    views: ClassVar[tuple[View, ...]] = ()  # charts and sample lists, in order
    metric_groups: ClassVar[tuple[MetricGroup, ...]] = ()  # summary metrics shown together

    def validate(self, config: C) -> None:
        """Refuse settings that cannot run (a one-line UserError), before anything is stored."""

    def validate_data(self, config: C, data: D) -> None:
        """Refuse loaded data the settings cannot run (e.g. images for a text-only model), before
        anything is stored or called."""

    # data ---------------------------------------------------------------------------
    @abstractmethod
    def load(self, config: C) -> D:
        """Read the data a new run (or a resumed one) is made on, from its source."""

    @abstractmethod
    def to_records(self, data: D) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(set-level facts, one JSON record per item): what the store keeps of the data."""

    @abstractmethod
    def from_records(self, dataset: Dataset, meta: dict[str, Any], records: list[dict[str, Any]]) -> D:
        """The data rebuilt from the store (the inverse of :meth:`to_records`)."""

    @abstractmethod
    def load_recorded(self, run: Run, dataset: Dataset, config: C) -> D:
        """Runs recorded before items were stored: read the source file, refusing a changed one."""

    def for_resume(self, config: C, data: D) -> D:
        """The data a resumed run needs beyond its stored items (e.g. given responses)."""
        return data

    @abstractmethod
    def plan(self, config: C, data: D) -> list[Job]:
        """The run's jobs (item index, repeat), in order."""

    # running ------------------------------------------------------------------------
    @abstractmethod
    def pipeline(self, context: RunContext[C, D]) -> JobRunner:
        """The worker that does one job: calls, then hands each outcome to the store writer."""

    def models(self, config: C) -> dict[str, str | None]:
        """Role -> model label, for the run row and the budget (None: no model for that role)."""
        return {}

    @abstractmethod
    def score(self, store: Store, run_id: int, config: C, data: D, jobs: list[Job]) -> dict[str, Any]:
        """The run's summary, from what the store holds (so resumed runs score every session)."""

    # reading back -------------------------------------------------------------------
    @abstractmethod
    def item_results(self, store: Store, run: Run, config: C, data: D, jobs: list[Job]) -> ItemResults: ...

    @abstractmethod
    def document(self, run: Run, dataset: Dataset, config: C, summary: dict[str, Any]) -> dict[str, Any]:
        """The ``--json`` document (also the core of ``runs show --json``)."""

    @abstractmethod
    def print_summary(self, console: Console, run: Run, dataset: Dataset, summary: dict[str, Any]) -> None: ...

    @abstractmethod
    def records(self, store: Store, run: Run, config: C, data: D) -> list[SampleRecord]:
        """One record per answered item and repeat, from the store: what every view renders."""

    def unscored_share(self, store: Store, run: Run) -> tuple[float, str]:
        """The share of the run's verdicts that could not be read, for the gate's ungraded rule."""
        total, missing = queries.ungraded_counts(store, run.id)
        return (missing / total if total else 0.0), f"{missing} of {total} criteria ungraded"


def call_accounting(store: Store, run_id: int) -> dict[str, Any]:
    """``usage`` by role (calls, rejected, cached, failed, tokens), ``n_failed_calls`` and
    ``n_calls_recorded``: the summary keys that say whether every call of the run has an answer."""
    usage = store.usage(run_id)
    recorded = sum(role.pop("recorded") for role in usage.values())
    accounting: dict[str, Any] = {
        "n_failed_calls": sum(role["failed"] for role in usage.values()),
        "n_calls_recorded": recorded,
        "usage": usage,
    }
    phi = phi_summary(queries.call_notes(store, run_id))
    if phi is not None:
        accounting["phi"] = phi
    return accounting


def phi_summary(notes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The PHI policy over a run's stored calls: calls per policy and endpoint class, calls
    blocked, and entities redacted by type (counts only: values are never stored)."""
    applied = [note["phi"] for note in notes if isinstance(note.get("phi"), dict)]
    if not applied:
        return None
    calls: Counter[str] = Counter()
    entities: Counter[str] = Counter()
    blocked = 0
    for note in applied:
        calls[f"{note.get('policy')}:{note.get('endpoint')}"] += 1
        found = note.get("entities") or {}
        if note.get("policy") == "block":
            blocked += bool(found)
        else:
            entities.update(found)
    return {"calls": dict(sorted(calls.items())), "blocked": blocked, "redacted": dict(sorted(entities.items()))}


def check_recorded(sha256: str, dataset: Dataset, run: Run) -> None:
    """A run recorded before items were stored reads its source file: refused if it changed."""
    if sha256 != dataset.sha256:
        raise UserError(f"{dataset.path} changed since run {run.id} was made (sha256 differs)")
