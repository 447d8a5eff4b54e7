"""A stored run's per-item results, rebuilt from the store for comparison and gating."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from medops.datasets.healthbench import RubricDataset, load_rubric_dataset, select_indices
from medops.datasets.mcqa import MCQSet, load_mcqa
from medops.datasets.responses import load_responses
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig, McqaConfig
from medops.evaluation.healthbench import plan_jobs
from medops.evaluation.scoring_run import job_metrics
from medops.store import queries
from medops.store.repository import Store
from medops.store.schema import Dataset, Run


@dataclass
class RunResults:
    run: Run
    dataset: Dataset
    binary: bool  # exam runs: right/wrong items
    # (item key, repeat) -> metric values; an item key is its position, or with
    # by_identity its id plus which occurrence of that id it is (ids may repeat)
    items: dict[tuple, dict[str, float]]


def _identity_keys(ids: list[str]) -> list[tuple[str, int]]:
    seen: Counter[str] = Counter()
    keys = []
    for item_id in ids:
        keys.append((item_id, seen[item_id]))
        seen[item_id] += 1
    return keys


def load_results(store: Store, ref: str, *, by_identity: bool = False) -> RunResults:
    run = store.find_run(ref)
    dataset = store.dataset(run.dataset_id)
    if run.benchmark == "healthbench":
        config = HealthBenchConfig.model_validate(run.config)
        rubric = recorded_rubric_set(run, dataset)
        given = None
        if config.completions == "given":  # the rows that had responses are the ones with stored grades
            given = load_responses(config.responses_path, rubric)
        jobs, _ = plan_jobs(rubric, config, given)
        per_job, _, _ = job_metrics(store, run.id, rubric, config, jobs)
        keys = _identity_keys([e.prompt_id for e in rubric.examples]) if by_identity else None
        items = {((keys[i] if keys else i), r): m for (i, r), m in per_job.items()}
        return RunResults(run, dataset, False, items)
    if run.benchmark == "mcqa":
        config_m = McqaConfig.model_validate(run.config)
        exam = recorded_exam(run, dataset)
        chosen = set(select_indices(len(exam), config_m.limit, config_m.seed))
        answers = queries.answers(store, run.id).values()
        keys = _identity_keys([i.id for i in exam.items]) if by_identity else None
        items = {}
        for a in answers:
            if a.item_index in chosen:
                tags = exam.items[a.item_index].tags
                value = 1.0 if a.correct else 0.0
                metrics = {"accuracy": value, **{f"{k}:{v}": value for k, v in tags.items() if v}}
                items[((keys[a.item_index] if keys else a.item_index), a.repeat)] = metrics
        return RunResults(run, dataset, True, items)
    raise UserError(f"run {run.id} is a {run.benchmark} run; compare and gate take healthbench and mcqa runs")


def _check(sha256: str, dataset: Dataset, run: Run) -> None:
    if sha256 != dataset.sha256:
        raise UserError(f"{dataset.path} changed since run {run.id} was made (sha256 differs)")


def recorded_rubric_set(run: Run, dataset: Dataset) -> RubricDataset:
    """The rubric set a run was made on, refused if the file changed since (rows are matched by position)."""
    rubric = load_rubric_dataset(dataset.path, dataset.name)
    _check(rubric.facts.sha256, dataset, run)
    return rubric


def recorded_exam(run: Run, dataset: Dataset) -> MCQSet:
    """The exam file a run was made on, refused if it changed since."""
    exam = load_mcqa(McqaConfig.model_validate(run.config).task, dataset.path, dataset.name)
    _check(exam.facts.sha256, dataset, run)
    return exam
