"""Views render what benchmarks declare: no template, view or report module names a benchmark."""

from __future__ import annotations

import re
from pathlib import Path

from medops.evaluation.records import Bars, Samples
from medops.evaluation.registry import BENCHMARKS

SRC = Path(__file__).resolve().parents[1] / "src" / "medops"
VIEW_PACKAGES = ("reports", "web", "api")


def view_files() -> list[Path]:
    return sorted(p for package in VIEW_PACKAGES for p in (SRC / package).rglob("*") if p.suffix in (".py", ".j2"))


def benchmark_tests(text: str) -> list[str]:
    """Every place ``text`` tests a benchmark: ``benchmark ==``, or a registered benchmark's name
    compared (``== "mcqa"``, ``!= 'healthbench'``) or looked up in a literal (``in ("healthbench", ...)``)."""
    names = "|".join(re.escape(name) for name in BENCHMARKS)
    quoted = rf"""["'](?:{names})["']"""
    patterns = (
        r"benchmark\s*[!=]=",
        rf"[!=]=\s*{quoted}",
        rf"{quoted}\s*[!=]=",
        rf"\bin\s*[(\[{{][^)\]}}]*{quoted}",
    )
    return [m.group(0) for pattern in patterns for m in re.finditer(pattern, text)]


def test_the_check_finds_what_it_looks_for():
    assert benchmark_tests('{% if run.benchmark == "mcqa" %}') and benchmark_tests("kind != 'healthbench'")
    assert benchmark_tests('if document["benchmark"] in ("healthbench", "meta-eval"):')
    assert not benchmark_tests('healthbench_config(options, benchmark="meta-eval")')  # naming one is not testing it


def test_no_view_tests_a_benchmark_name():
    assert len(BENCHMARKS) >= 3
    found = {
        f"{path.relative_to(SRC)}: {hit}" for path in view_files() for hit in benchmark_tests(path.read_text("utf-8"))
    }
    assert found == set()


def test_every_benchmark_declares_what_its_views_need():
    for kind in BENCHMARKS.values():
        groups = {g.name for g in kind.metric_groups}
        assert {v.group for v in kind.views if isinstance(v, Bars)} <= groups, kind.name
        assert sum(isinstance(v, Samples) for v in kind.views) <= 1, kind.name  # the dashboard lists one
        assert kind.export.columns and kind.headline.unit, kind.name
