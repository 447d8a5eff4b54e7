"""Every benchmark medops runs, by the name its runs are stored under. Adding a benchmark is one
module implementing ``evaluation.contract.Benchmark`` plus one line here."""

from __future__ import annotations

from medops.errors import UserError
from medops.evaluation.contract import Benchmark
from medops.evaluation.healthbench import HealthBench
from medops.evaluation.mcqa import Exam
from medops.evaluation.meta_eval import MetaEval

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (HealthBench(), MetaEval(), Exam())}


def benchmark(name: str) -> Benchmark:
    """The benchmark runs named ``name`` were made with; a one-line error for any other run kind."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        known = ", ".join(BENCHMARKS)
        raise UserError(f"'{name}' runs are not evaluation runs (evaluation benchmarks: {known})") from None


def benchmark_for(config: object) -> Benchmark:
    """The benchmark a config describes (HealthBench configs name theirs; exam configs are exams)."""
    name = getattr(config, "benchmark", None) or next(
        (b.name for b in BENCHMARKS.values() if type(config) is b.config_type), None
    )
    if name is None:
        raise TypeError(f"no benchmark takes a {type(config).__name__}")
    return benchmark(name)
