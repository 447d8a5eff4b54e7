"""``medops monitor grade``, ``medops monitor canary`` and ``medops monitor compare``: the quality of
the deployed model (online grading of recorded traffic, canary evaluations, A/B arms side by side).

Exit status: ``grade`` 0, or 3 when the window's run is incomplete; ``canary`` 1 when a metric
dropped significantly against the baseline (so cron can alert), 3 when the run is incomplete, 0
otherwise. With ``--every`` a command repeats (Ctrl-C between rounds stops it cleanly, exit 0).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import typer
from rich.markup import escape
from rich.table import Table

from medops.cli.console import err, out
from medops.cli.monitor_cmd import app
from medops.cli.options import (
    CONCURRENCY_OPTION,
    DB_OPTION,
    JSON_OPTION,
    MAX_TRIES_OPTION,
    PHI_POLICY_OPTION,
    RETRY_DELAY_OPTION,
    TIMEOUT_OPTION,
)

SINCE_HELP = "The window: the last DURATION (30s, 10m, 1h, 6h, 2d) [default: 1h, or --every when given]."
EVERY_HELP = "Repeat every DURATION (10m, 1h, 6h); Ctrl-C stops. Without it, one round."


def _repeat(every: str | None, round_once: Callable[[], int]) -> int:
    """One round, or rounds every ``every`` until Ctrl-C (exit 0) or a round is interrupted (130)."""
    from medops.monitor.windows import format_duration, parse_duration

    period = parse_duration(every) if every is not None else None
    while True:
        started = time.monotonic()
        code = round_once()
        if period is None or code == 130:
            return code
        wait = max(0.0, period.total_seconds() - (time.monotonic() - started))
        err.print(f"next round in {format_duration(period)} (Ctrl-C stops)")
        try:
            time.sleep(wait)
        except KeyboardInterrupt:
            err.print("stopped")
            return 0


def _run_options(concurrency: int, max_tries: int, retry_base_delay: float, timeout: float) -> dict:
    return {
        "concurrency": concurrency,
        "max_tries": max_tries,
        "retry_base_delay": retry_base_delay,
        "timeout": timeout,
    }


@app.command("grade")
def grade(
    grader: str = typer.Option(..., "--grader", help="The grader, e.g. openai:gpt-4.1 or local:qwen2.5-7b."),
    since: str = typer.Option(None, "--since", help=SINCE_HELP),
    sample: float = typer.Option(
        None, "--sample", help="Share of each stratum (department x arm) to grade, in (0, 1] [default: 0.05]."
    ),
    sample_n: int = typer.Option(None, "--sample-n", min=1, help="Grade N exchanges in all, spread over strata."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample and the bootstrap."),
    rubrics: str = typer.Option(
        None,
        "--rubrics",
        help="Conversation-level rubric set (JSONL: criterion, points, tags) replacing the default English "
        "and Korean sets.",
    ),
    every: str = typer.Option(None, "--every", help=EVERY_HELP),
    grader_base_url: str = typer.Option(None, "--grader-base-url", envvar="MEDOPS_GRADER_BASE_URL"),
    grader_api_key_env: str = typer.Option(None, "--grader-api-key-env"),
    concurrency: int = CONCURRENCY_OPTION,
    max_tries: int = MAX_TRIES_OPTION,
    retry_base_delay: float = RETRY_DELAY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    phi_policy: str = PHI_POLICY_OPTION,
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Grade a seeded, stratified sample of recorded exchanges with conversation-level rubrics;
    scores go to the store as a time series per window and tag."""
    from medops.errors import UserError
    from medops.monitor.online import grade_window, rubric_sets
    from medops.monitor.windows import window_bounds
    from medops.store.repository import Store

    if sample is not None and sample_n is not None:
        raise UserError("give --sample SHARE or --sample-n N, not both")
    if rubrics is not None:
        rubric_sets(rubrics)  # a bad file is refused before the first round
    store = Store.open(db)
    window = since or every or "1h"

    def round_once() -> int:
        start, end = window_bounds(window)
        outcome = grade_window(
            store,
            start=start,
            end=end,
            grader=grader,
            grader_base_url=grader_base_url,
            grader_api_key_env=grader_api_key_env,
            share=sample,
            n=sample_n,
            seed=seed,
            rubrics=rubrics,
            phi_policy=phi_policy,
            run_options=_run_options(concurrency, max_tries, retry_base_delay, timeout),
        )
        if as_json:
            print(json.dumps(outcome.to_dict(), ensure_ascii=False), flush=True)
        else:
            _print_grading(outcome)
        if outcome.message:
            err.print(f"[yellow]{escape(outcome.message)}[/]", soft_wrap=True)
        return outcome.exit_code

    code = _repeat(every, round_once)
    if code:
        raise typer.Exit(code)


def _print_grading(outcome) -> None:
    s = outcome.sample
    span = f"{outcome.window_start:%Y-%m-%d %H:%M:%S}" if outcome.window_start else "start"
    out.print(
        f"window {span} .. {outcome.window_end:%Y-%m-%d %H:%M:%S} UTC: {s.in_window} exchange(s), "
        f"{s.textless} without text (not gradable), {len(s.chosen)} sampled"
        + (f" ({s.pair_completions} added to complete shadow pairs)" if s.pair_completions else "")
        + (f"; run {outcome.run_id} {outcome.status}" if outcome.run_id is not None else "")
    )
    if not outcome.rows:
        return
    metrics = sorted({r["metric"] for r in outcome.rows if r["metric"].startswith(("overall", "axis:"))})
    metrics.sort(key=lambda m: (m != "overall_score", m))
    table = Table(show_edge=False)
    table.add_column("tag")
    table.add_column("n", justify="right")
    for metric in metrics:
        table.add_column(escape(metric), justify="right")
    by_tag: dict[str, dict[str, dict]] = {}
    for row in outcome.rows:
        by_tag.setdefault(row["tag"], {})[row["metric"]] = row
    for tag, values in by_tag.items():
        n = values.get("overall_score", {}).get("n", "")
        cells = [f"{values[m]['value']:.3f}" if m in values else "-" for m in metrics]
        table.add_row(escape(tag), str(n), *cells)
    out.print(table)


@app.command("canary")
def canary(
    data: str = typer.Option(..., "--data", help="A rubric set (built-in name or JSONL), or an exam with --task."),
    model: str = typer.Option(..., "--model", help="The live endpoint, e.g. openai:our-model."),
    grader: str = typer.Option(None, "--grader", help="The grader, for a rubric set."),
    task: str = typer.Option(None, "--task", help="The exam --data is (medqa, kmle, ...): an exam canary."),
    baseline: str = typer.Option(
        None,
        "--baseline",
        help="Run to compare with (id or name) [default: the previous completed canary run on the same data "
        "with the same model].",
    ),
    every: str = typer.Option(None, "--every", help=EVERY_HELP),
    model_base_url: str = typer.Option(None, "--model-base-url", envvar="MEDOPS_MODEL_BASE_URL"),
    model_api_key_env: str = typer.Option(None, "--model-api-key-env"),
    grader_base_url: str = typer.Option(None, "--grader-base-url", envvar="MEDOPS_GRADER_BASE_URL"),
    grader_api_key_env: str = typer.Option(None, "--grader-api-key-env"),
    seed: int = typer.Option(0, "--seed", help="Seed of --limit, the bootstrap and the permutation test."),
    limit: int = typer.Option(None, "--limit", min=1, help="Use a seeded sample of N items (the same every round)."),
    no_cache: bool = typer.Option(
        True, "--no-cache/--cache", help="Ask the live endpoint again every round (default) or reuse cached answers."
    ),
    concurrency: int = CONCURRENCY_OPTION,
    max_tries: int = MAX_TRIES_OPTION,
    retry_base_delay: float = RETRY_DELAY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    phi_policy: str = PHI_POLICY_OPTION,
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Re-run a fixed evaluation against the live endpoint and compare it with a baseline run
    (paired tests, as `medops compare`). Exit 1 on a significant drop, 3 on an incomplete run."""
    from medops.monitor.canary import canary_config, run_canary
    from medops.store.repository import Store

    options = {**_run_options(concurrency, max_tries, retry_base_delay, timeout), "limit": limit}
    options["no_cache"] = no_cache
    config = canary_config(
        data=data,
        model=model,
        task=task,
        grader=grader,
        model_base_url=model_base_url,
        model_api_key_env=model_api_key_env,
        grader_base_url=grader_base_url,
        grader_api_key_env=grader_api_key_env,
        seed=seed,
        run_options=options,
    )
    store = Store.open(db)

    def round_once() -> int:
        outcome = run_canary(store, config, baseline=baseline, seed=seed, phi_policy=phi_policy)
        if as_json:
            print(json.dumps(outcome.to_dict(), ensure_ascii=False), flush=True)
        else:
            _print_canary(outcome)
        if outcome.message:
            colour = "red" if outcome.exit_code == 1 else "yellow"
            err.print(f"[{colour}]{escape(outcome.message)}[/]", soft_wrap=True)
        return outcome.exit_code

    code = _repeat(every, round_once)
    if code:
        raise typer.Exit(code)


def _print_canary(outcome) -> None:
    score = f"{outcome.score:.3f}" if outcome.score is not None else "-"
    out.print(f"canary run {outcome.run_id} {outcome.status}: score {score}")
    report = outcome.comparison
    if report is None:
        return
    table = Table(
        title=f"run {outcome.run_id} vs baseline run {outcome.baseline_run_id} on {report['n_shared']} shared items",
        title_justify="left",
        show_edge=False,
    )
    for column in ("metric", "baseline", "now", "now - baseline", "95% CI", "p", "p (Holm)", ""):
        table.add_column(column, justify="left" if column in ("metric", "") else "right")
    for name, r in report["metrics"].items():
        flag = ("DROP" if r["difference"] < 0 else "significant") if r["significant"] else ""
        table.add_row(
            escape(name),
            f"{r['mean_a']:.3f}",
            f"{r['mean_b']:.3f}",
            f"{r['difference']:+.3f}",
            f"{r['ci95_low']:+.3f}..{r['ci95_high']:+.3f}",
            f"{r['p_value']:.3g}",
            f"{r['p_holm']:.3g}",
            flag,
        )
    out.print(table)
    test = next(iter(report["metrics"].values()))["test"] if report["metrics"] else "-"
    out.print(f"test: {test}; significant = Holm-adjusted p < {report['alpha']}")


@app.command("compare")
def compare(
    since: str = typer.Option("1h", "--since", help="The window: the last DURATION (10m, 1h, 2d)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and the permutation tests."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The A/B arms side by side, from online grading of the window: shadow copies against their
    primary exchanges (paired), the candidate arm against the primary arm (unpaired)."""
    from medops.monitor.arms import compare_arms
    from medops.monitor.windows import window_bounds
    from medops.store.repository import Store

    start, end = window_bounds(since)
    report = compare_arms(Store.open(db, create=False), start=start, end=end, seed=seed)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    out.print(
        f"window {report['window_start']} .. {report['window_end']}: {report['graded_exchanges']} of "
        f"{report['exchanges']} exchange(s) graded (online runs {', '.join(map(str, report['runs'])) or 'none'})"
    )
    table = Table(show_edge=False)
    for column in ("arms", "test", "n", "mean primary", "mean other", "other - primary", "95% CI", "p", ""):
        table.add_column(column, justify="left" if column in ("arms", "test", "") else "right")
    shadow, candidate = report["shadow"], report["candidate"]
    for label, block, n in (
        ("shadow vs primary (paired)", shadow, str(shadow["n"])),
        ("candidate vs primary (unpaired)", candidate, f"{candidate['n']['primary']}/{candidate['n']['candidate']}"),
    ):
        r = block["result"]
        if r is None:
            table.add_row(label, "-", n, "-", "-", "-", "-", "-", "no graded exchanges in both arms")
            continue
        table.add_row(
            label,
            r["test"],
            n,
            f"{r['mean_a']:.3f}",
            f"{r['mean_b']:.3f}",
            f"{r['difference']:+.3f}",
            f"{r['ci95_low']:+.3f}..{r['ci95_high']:+.3f}",
            f"{r['p_value']:.3g}",
            "significant" if r["significant"] else "",
        )
    out.print(table)
    out.print(f"significant = p < {report['alpha']}")
