"""The HealthBench meta-evaluation: how well a grader agrees with physicians.

The physician-labelled rows are graded by the rubric pipeline unchanged (rows about one
completion become one example with one criterion per row), then scored as agreement.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console

from medops.datasets.healthbench import RubricDataset, select_indices
from medops.datasets.jsonl import FileFacts
from medops.datasets.meta_eval import MetaEvalSet, MetaRow, load_meta_eval
from medops.datasets.registry import resolve
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.contract import Benchmark, ItemResults, RunContext, call_accounting, check_recorded
from medops.evaluation.engine import Job, JobRunner
from medops.evaluation.healthbench import (
    CRITERION_EXPORT,
    RUBRIC_HEADLINE,
    build_judges,
    build_pipeline,
    rubric_records,
)
from medops.evaluation.records import Reliability, SampleRecord
from medops.evaluation.summaries import meta_eval_json, print_meta_eval_summary
from medops.scoring.agreement import (
    calibration,
    fleiss_kappa,
    macro_f1,
    majority_label,
    pairwise_agreement,
    physician_agreements,
    pooled_physician_agreement,
)
from medops.scoring.calibration import verdict_calibration
from medops.store import queries
from medops.store.repository import Store
from medops.store.schema import Dataset, Run


@dataclass(frozen=True)
class MetaEvalData:
    """The labelled rows, and the same rows as rubric examples with the completions as given responses."""

    meta: MetaEvalSet
    dataset: RubricDataset
    given: dict[int, str]
    positions: list[tuple[int, int]]  # row -> (example_index, criterion_index)

    @classmethod
    def of(cls, meta: MetaEvalSet) -> MetaEvalData:
        return cls(meta, *meta.as_rubric_dataset())

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def facts(self) -> FileFacts:
        return self.meta.facts

    def __len__(self) -> int:
        return len(self.meta.rows)


class MetaEval(Benchmark[HealthBenchConfig, MetaEvalData]):
    name = "meta-eval"
    command = "medops meta-eval"
    config_type = HealthBenchConfig
    measures_grader = True
    headline = RUBRIC_HEADLINE
    export = CRITERION_EXPORT  # the rubric pipeline's rows: one per physician-labelled criterion
    # its scores are agreement blocks, not per-sample: the summary shows them; P(met) verdicts' calibration
    views = (Reliability("Grader calibration: verdicts right by P(met) confidence"),)

    def load(self, config: HealthBenchConfig) -> MetaEvalData:
        name, path = resolve(config.data)
        return MetaEvalData.of(load_meta_eval(path, name))

    def to_records(self, data: MetaEvalData) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return {}, [row.model_dump(mode="json") for row in data.meta.rows]

    def from_records(self, dataset: Dataset, meta: dict[str, Any], records: list[dict[str, Any]]) -> MetaEvalData:
        facts = FileFacts(dataset.path, dataset.sha256, dataset.size_bytes)
        return MetaEvalData.of(MetaEvalSet(dataset.name, facts, tuple(MetaRow.model_validate(r) for r in records)))

    def load_recorded(self, run: Run, dataset: Dataset, config: HealthBenchConfig) -> MetaEvalData:
        data = MetaEvalData.of(load_meta_eval(dataset.path, dataset.name))
        check_recorded(data.facts.sha256, dataset, run)
        return data

    def plan(self, config: HealthBenchConfig, data: MetaEvalData) -> list[Job]:
        candidates = sorted(data.given)
        chosen = [candidates[j] for j in select_indices(len(candidates), config.limit, config.seed)]
        return [(index, repeat) for repeat in range(config.repeats) for index in chosen]

    def models(self, config: HealthBenchConfig) -> dict[str, str | None]:
        return {"model": "given", "grader": str(config.grader)}

    def pipeline(self, context: RunContext[HealthBenchConfig, MetaEvalData]) -> JobRunner:
        judges = build_judges(context.config)  # the graders being measured against the physicians
        return build_pipeline(context, context.data.dataset, context.data.given, None, judges)

    def score(
        self, store: Store, run_id: int, config: HealthBenchConfig, data: MetaEvalData, jobs: list[Job]
    ) -> dict[str, Any]:
        return score_meta_run(store, run_id, data.meta, data.positions, jobs)

    def item_results(
        self, store: Store, run: Run, config: HealthBenchConfig, data: MetaEvalData, jobs: list[Job]
    ) -> ItemResults:
        raise UserError(f"run {run.id} is a meta-eval run: compare and gate take healthbench and mcqa runs")

    def document(
        self, run: Run, dataset: Dataset, config: HealthBenchConfig, summary: dict[str, Any]
    ) -> dict[str, Any]:
        return meta_eval_json(run, dataset, summary)

    def print_summary(self, console: Console, run: Run, dataset: Dataset, summary: dict[str, Any]) -> None:
        print_meta_eval_summary(console, run, dataset, summary)

    def records(self, store: Store, run: Run, config: HealthBenchConfig, data: MetaEvalData) -> list[SampleRecord]:
        return rubric_records(store, run, data.dataset)


def score_meta_run(
    store: Store, run_id: int, meta: MetaEvalSet, positions: list[tuple[int, int]], jobs: list[Job]
) -> dict[str, Any]:
    """Grader-vs-physician agreement, pooled and per category, with the physicians' own for scale."""
    graded = {key: (g.criteria_met, g.p_met) for key, g in queries.grades(store, run_id).items()}
    rows_of: dict[int, list[int]] = defaultdict(list)
    for row_index, (example_index, _) in enumerate(positions):
        rows_of[example_index].append(row_index)
    rows, labels, probabilities = [], [], []
    asked = 0
    for example_index, repeat in jobs:
        for row_index in rows_of[example_index]:
            asked += 1
            met, p_met = graded.get((example_index, repeat, positions[row_index][1]), (None, None))
            if met is not None:
                rows.append(meta.rows[row_index])
                labels.append(met)
                probabilities.append(p_met)
    categories = sorted({row.category for row in rows})
    metrics: dict[str, Any] = {"overall": _agreement_block(rows, labels, probabilities)}
    for category in categories:
        picked = [i for i, row in enumerate(rows) if row.category == category]
        metrics[category] = _agreement_block(
            [rows[i] for i in picked], [labels[i] for i in picked], [probabilities[i] for i in picked]
        )
    overall = metrics["overall"]
    majority = [majority_label(row.binary_labels) for row in rows]
    return {
        "score": overall["grader_pairwise"]["balanced_f1"],
        "n_examples": len(rows),
        "n_excluded_examples": asked - len(rows),
        "n_ungraded_criteria": asked - len(rows),
        "agreement": metrics,
        # P(met) of the verdicts (--grader-verdict logprob) against the physicians' majority
        **verdict_calibration(list(zip(labels, probabilities, strict=True)), majority),
        **call_accounting(store, run_id),
        **_jury_agreement(store, run_id, meta, positions, jobs),
    }


def _jury_agreement(
    store: Store, run_id: int, meta: MetaEvalSet, positions: list[tuple[int, int]], jobs: list[Job]
) -> dict[str, Any]:
    """``jury`` for a run with several graders: each juror measured against the physicians on
    the rows it graded (as if it graded alone), beside the jury's verdict above, and the jurors'
    agreement with each other (Fleiss' kappa over the rows every juror graded); nothing for one."""
    judging = store.find_run(str(run_id)).judges
    if not judging or len(judging["judges"]) < 2:
        return {}
    names = [judge["name"] for judge in judging["judges"]]
    by_key = queries.judge_grades(store, run_id)
    rows_of: dict[int, list[int]] = defaultdict(list)
    for row_index, (example_index, _) in enumerate(positions):
        rows_of[example_index].append(row_index)
    said: dict[str, tuple[list[MetaRow], list[bool], list[float | None]]] = {n: ([], [], []) for n in names}
    counts = []
    for example_index, repeat in jobs:
        for row_index in rows_of[example_index]:
            by_judge = by_key.get((example_index, repeat, positions[row_index][1]), {})
            verdicts = {n: by_judge[n] for n in names if n in by_judge and by_judge[n].criteria_met is not None}
            for name, grade in verdicts.items():
                rows, labels, probabilities = said[name]
                rows.append(meta.rows[row_index])
                labels.append(bool(grade.criteria_met))
                probabilities.append(grade.p_met)
            if len(verdicts) == len(names):
                met = sum(bool(g.criteria_met) for g in verdicts.values())
                counts.append([met, len(names) - met])
    jurors = []
    for name in names:
        block = _agreement_block(*said[name])
        jurors.append(
            {
                "judge": name,
                "n_rows": block["n_rows"],
                "balanced_f1": block["grader_pairwise"]["balanced_f1"],
                "grader_vs_majority_macro_f1": block["grader_vs_majority_macro_f1"],
                "grader_percentile": block["physicians_balanced_f1"]["grader_percentile"],
            }
        )
    return {
        "jury": {
            "reducer": judging["reducer"],
            "jurors": jurors,
            "fleiss_kappa": fleiss_kappa(counts),
            "n_rows_compared": len(counts),
        }
    }


def _agreement_block(rows: list, labels: list[bool], probabilities: list[float | None]) -> dict[str, Any]:
    physician_labels = [row.binary_labels for row in rows]
    per_physician = physician_agreements(physician_labels, [row.anonymized_physician_ids for row in rows])
    physician_f1 = sorted(a.balanced_f1 for a in per_physician.values() if a.balanced_f1 is not None)
    grader = pairwise_agreement(labels, physician_labels)
    majority = [majority_label(row_labels) for row_labels in physician_labels]
    block: dict[str, Any] = {
        "n_rows": len(rows),
        "grader_pairwise": grader.to_dict(),
        "physicians_pairwise_pooled": pooled_physician_agreement(physician_labels).to_dict(),
        "physicians_balanced_f1": {
            "n_physicians": len(physician_f1),
            "min": physician_f1[0] if physician_f1 else None,
            "median": float(np.median(physician_f1)) if physician_f1 else None,
            "max": physician_f1[-1] if physician_f1 else None,
            # share of physicians the grader agrees with the others at least as well as
            "grader_percentile": (
                sum(f <= grader.balanced_f1 for f in physician_f1) / len(physician_f1)
                if physician_f1 and grader.balanced_f1 is not None
                else None
            ),
        },
        "grader_vs_majority_macro_f1": macro_f1(labels, majority),
        "majority_met_rate": sum(majority) / len(majority) if majority else None,
        "grader_met_rate": sum(labels) / len(labels) if labels else None,
    }
    if probabilities and all(p is not None for p in probabilities):
        result = calibration(probabilities, majority)  # type: ignore[arg-type]
        block["calibration"] = {"ece": result.ece, "reliability": result.bins}
    return block
