"""Online grading: a seeded, stratified sample of a window's recorded exchanges, graded with
conversation-level rubrics through the ordinary evaluation machinery.

The sampled exchanges become a rubric set in the HealthBench format (one example per exchange:
``prompt`` the stored messages, ``prompt_id`` ``exchange:<id>``, the rubric set that fits its
language, ``example_tags`` ``department:X``, ``application:Y``, ``arm:Z``, ``language:ko|en``) and
the stored answers a ``--responses`` file, both written under the cache dir. The window is then an
ordinary ``given``-completions run: every grader call is cached, resumable, goes through the PHI
guard and the audit trail. Its scores are written to ``monitor_scores`` (source ``online``), one
row per tag (``all`` and every example tag) and metric (``overall_score``, each rubric tag).

Exchanges stored without text (a PHI policy that blocks) cannot be graded; they are counted.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from medops.content import text_of
from medops.datasets.healthbench import ROLES, RubricItem
from medops.datasets.jsonl import describe_validation_error, iter_json_lines, read_bytes
from medops.errors import DataError, UserError
from medops.evaluation.engine import Counters
from medops.evaluation.results import load_results
from medops.evaluation.run import evaluate
from medops.evaluation.settings import healthbench_config
from medops.evaluation.subscribers import run_subscribers
from medops.events import EventBus
from medops.monitor.windows import as_utc
from medops.paths import cache_dir
from medops.scoring.healthbench import OVERALL, clipped_mean
from medops.store.exchanges import exchanges
from medops.store.repository import Store
from medops.store.schema import Exchange
from medops.store.scores import add_scores

SOURCE = "online"
LANGUAGES = ("en", "ko")
NO_DEPARTMENT = "-"
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")
EXAMPLE_TAG_PREFIXES = ("department:", "application:", "arm:", "language:")


# rubric sets ------------------------------------------------------------------------------
def load_rubric_set(path: str | Path) -> list[RubricItem]:
    """A conversation-level rubric set: JSONL, one criterion a line (``criterion``, ``points``,
    ``tags``). A bad line is a one-line error naming file:line and field."""
    items: list[RubricItem] = []
    for line, obj in iter_json_lines(path, read_bytes(path)):
        if not isinstance(obj, dict):
            raise DataError(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
        if "criterion" not in obj:
            raise DataError(path, line, "criterion", "missing")
        if "points" not in obj:
            raise DataError(path, line, "points", "missing")
        try:
            items.append(RubricItem.model_validate(obj))
        except ValidationError as exc:
            raise describe_validation_error(path, line, exc) from None
    if not items:
        raise DataError(path, None, None, "contains no criteria")
    if not any(item.points > 0 for item in items):
        raise DataError(path, None, "points", "no criterion has positive points, so nothing can be scored")
    return items


def default_rubric_sets() -> dict[str, list[RubricItem]]:
    """The packaged sets, by language (``monitor/rubrics/conversation_<lang>.jsonl``)."""
    folder = resources.files("medops.monitor") / "rubrics"
    found = {}
    for language in LANGUAGES:
        with resources.as_file(folder / f"conversation_{language}.jsonl") as path:
            found[language] = load_rubric_set(path)
    return found


def rubric_sets(path: str | Path | None = None) -> dict[str, list[RubricItem]]:
    """``--rubrics FILE`` for every language, else the packaged English and Korean sets."""
    if path is None:
        return default_rubric_sets()
    items = load_rubric_set(path)
    return dict.fromkeys(LANGUAGES, items)


# exchanges -> conversations ---------------------------------------------------------------
def conversation(exchange: Exchange) -> list[dict[str, str]] | None:
    """The stored request as rubric-set messages, or None when there is nothing to grade (no
    stored messages or answer, as under a blocking PHI policy, or no user turn)."""
    if not exchange.messages or exchange.response is None or not exchange.response.strip():
        return None
    messages = []
    for message in exchange.messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            continue  # tool results and unknown roles are not part of the conversation graded
        text = text_of(message.get("content"))
        if text.strip():
            messages.append({"role": str(message["role"]), "content": text})
    if not any(m["role"] == "user" for m in messages):
        return None
    return messages


def language_of(messages: Sequence[dict[str, str]]) -> str:
    """``ko`` when most letters of the messages are Hangul, else ``en``."""
    text = " ".join(m["content"] for m in messages)
    hangul, latin = len(_HANGUL.findall(text)), len(_LATIN.findall(text))
    return "ko" if hangul and hangul >= latin else "en"


def stratum(exchange: Exchange) -> tuple[str, str]:
    return (exchange.department or NO_DEPARTMENT, exchange.arm or "primary")


# sampling ---------------------------------------------------------------------------------
@dataclass
class Sample:
    """What a window held and what was picked from it."""

    in_window: int
    textless: int  # stored without text (PHI policy block): cannot be graded
    chosen: list[Exchange]
    strata: dict[str, dict[str, int]] = field(default_factory=dict)  # "dept/arm" -> available, sampled
    pair_completions: int = 0  # partners added so that shadow pairs are graded together


def _allocation(sizes: dict[tuple[str, str], int], total: int) -> dict[tuple[str, str], int]:
    """``total`` spread over strata in proportion to their size (largest remainder), at least one
    each, never more than a stratum holds."""
    population = sum(sizes.values())
    exact = {key: total * size / population for key, size in sizes.items()}
    counts = {key: int(value) for key, value in exact.items()}
    left = total - sum(counts.values())
    for key in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))[: max(left, 0)]:
        counts[key] += 1
    return {key: min(sizes[key], max(1, counts[key])) for key in sizes}


def sample_exchanges(
    found: Iterable[Exchange],
    *,
    share: float | None = None,
    n: int | None = None,
    seed: int = 0,
    complete_pairs: bool = True,
) -> Sample:
    """A seeded sample stratified by department x arm: ``share`` of each stratum (rounded, at
    least one per non-empty stratum), or ``n`` in all spread in proportion. The same exchanges,
    seed and share give the same sample. With ``complete_pairs`` a sampled exchange's shadow
    partner (same ``pair_id``) is graded too, so the arms can be compared pair by pair."""
    if (share is None) == (n is None):
        raise UserError("give one of --sample SHARE or --sample-n N")
    if share is not None and not 0 < share <= 1:
        raise UserError(f"--sample must be a share in (0, 1], got {share}")
    if n is not None and n < 1:
        raise UserError(f"--sample-n must be at least 1, got {n}")
    everything = list(found)
    gradable = [e for e in everything if conversation(e) is not None]
    groups: dict[tuple[str, str], list[Exchange]] = defaultdict(list)
    for exchange in sorted(gradable, key=lambda e: e.id):
        groups[stratum(exchange)].append(exchange)
    sizes = {key: len(members) for key, members in groups.items()}
    if share is not None:
        counts = {key: min(size, max(1, round(share * size))) for key, size in sizes.items()}
    else:
        counts = _allocation(sizes, n) if sizes else {}
    chosen: dict[int, Exchange] = {}
    strata = {}
    for key in sorted(groups):
        rng = random.Random(f"{seed}:{key[0]}:{key[1]}")  # one stream per stratum: strata never shift one another
        picked = rng.sample(groups[key], counts[key])
        chosen.update((e.id, e) for e in picked)
        strata["/".join(key)] = {"available": sizes[key], "sampled": counts[key]}
    added = 0
    if complete_pairs:
        by_pair: dict[str, list[Exchange]] = defaultdict(list)
        for exchange in gradable:
            if exchange.pair_id:
                by_pair[exchange.pair_id].append(exchange)
        for exchange in list(chosen.values()):
            for partner in by_pair.get(exchange.pair_id or "", []):
                if partner.id not in chosen:
                    chosen[partner.id] = partner
                    added += 1
    return Sample(
        in_window=len(everything),
        textless=len(everything) - len(gradable),
        chosen=sorted(chosen.values(), key=lambda e: e.id),
        strata=strata,
        pair_completions=added,
    )


# window -> rubric set ---------------------------------------------------------------------
def example_tags(exchange: Exchange, language: str) -> list[str]:
    tags = []
    if exchange.department:
        tags.append(f"department:{exchange.department}")
    if exchange.application:
        tags.append(f"application:{exchange.application}")
    tags.append(f"arm:{exchange.arm or 'primary'}")
    tags.append(f"language:{language}")
    return tags


def window_rows(
    chosen: Sequence[Exchange], sets: dict[str, list[RubricItem]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rubric-set rows and the ``--responses`` rows for the sampled exchanges, in order."""
    data, responses = [], []
    for index, exchange in enumerate(chosen):
        messages = conversation(exchange)
        assert messages is not None  # sampled exchanges are gradable
        language = language_of(messages)
        data.append(
            {
                "prompt": messages,
                "prompt_id": f"exchange:{exchange.id}",
                "rubrics": [item.model_dump() for item in sets[language]],
                "example_tags": example_tags(exchange, language),
            }
        )
        responses.append({"index": index, "response": exchange.response})
    return data, responses


def write_window(
    data: list[dict[str, Any]], responses: list[dict[str, Any]], start: datetime | None, end: datetime
) -> tuple[Path, Path]:
    """Both files under ``<cache>/monitor/online/<window>-<content hash>/`` (same content, same place)."""
    body = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in data)
    answers = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in responses)
    digest = hashlib.sha256((body + "\0" + answers).encode()).hexdigest()[:12]
    stamp = f"{as_utc(start):%Y%m%dT%H%M%SZ}" if start is not None else "start"
    folder = cache_dir() / "monitor" / "online" / f"{stamp}-{as_utc(end):%Y%m%dT%H%M%SZ}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    data_path, responses_path = folder / "online-window.jsonl", folder / "responses.jsonl"
    data_path.write_text(body, encoding="utf-8")
    responses_path.write_text(answers, encoding="utf-8")
    return data_path, responses_path


# scores -----------------------------------------------------------------------------------
def score_rows(
    per_item: dict[int, dict[str, float]],
    tags_by_index: dict[int, list[str]],
    *,
    start: datetime | None,
    end: datetime,
    run_id: int | None,
    details: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per tag (``all`` and each example tag) and metric (``overall_score`` and each rubric
    tag): the clipped mean over the graded exchanges carrying that tag, as HealthBench scores."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index in sorted(per_item):
        for tag in ("all", *tags_by_index.get(index, [])):
            groups[tag].append(index)
    rows = []
    for tag, indices in groups.items():
        values: dict[str, list[float]] = defaultdict(list)
        for index in indices:
            for metric, value in per_item[index].items():
                if metric.startswith(EXAMPLE_TAG_PREFIXES):
                    continue  # example tags are the rows' tags, not metrics
                values[metric].append(value)
        for metric in sorted(values, key=lambda m: (m != OVERALL, m)):
            rows.append(
                {
                    "source": SOURCE,
                    "window_start": start if start is not None else end,
                    "window_end": end,
                    "tag": tag,
                    "metric": metric,
                    "value": clipped_mean(np.asarray(values[metric], dtype=float)),
                    "n": len(values[metric]),
                    "run_id": run_id,
                    "details": details,
                }
            )
    return rows


def per_item_scores(store: Store, run_id: int) -> dict[int, dict[str, float]]:
    """Example index -> metric values of a graded window (repeats averaged; ungraded items absent)."""
    results = load_results(store, str(run_id))
    sums: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (index, _repeat), metrics in results.items.items():
        for name, value in metrics.items():
            sums[index][name].append(value)
    return {index: {name: sum(v) / len(v) for name, v in metrics.items()} for index, metrics in sums.items()}


def exchange_scores(store: Store, run_id: int) -> dict[int, float]:
    """Exchange id -> its overall score in a graded window (for ``monitor compare``)."""
    results = load_results(store, str(run_id), by_identity=True)
    sums: dict[int, list[float]] = defaultdict(list)
    for ((prompt_id, _occurrence), _repeat), metrics in results.items.items():
        if str(prompt_id).startswith("exchange:") and OVERALL in metrics:
            sums[int(str(prompt_id).split(":", 1)[1])].append(metrics[OVERALL])
    return {exchange_id: sum(v) / len(v) for exchange_id, v in sums.items()}


# one window, end to end -------------------------------------------------------------------
@dataclass
class GradingOutcome:
    window_start: datetime | None
    window_end: datetime
    sample: Sample
    run_id: int | None = None
    status: str | None = None  # the run's: completed, incomplete, ... (None: nothing to grade)
    exit_code: int = 0
    message: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        overall = {r["tag"]: {"value": r["value"], "n": r["n"]} for r in self.rows if r["metric"] == OVERALL}
        return {
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat(),
            "in_window": self.sample.in_window,
            "textless": self.sample.textless,
            "sampled": len(self.sample.chosen),
            "pair_completions": self.sample.pair_completions,
            "strata": self.sample.strata,
            "languages": self.languages,
            "run_id": self.run_id,
            "status": self.status,
            "message": self.message,
            "overall_score": overall,
            "scores": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if k != "details"}
                for row in self.rows
            ],
        }


def grade_window(
    store: Store,
    *,
    start: datetime | None,
    end: datetime,
    grader: str,
    grader_base_url: str | None = None,
    grader_api_key_env: str | None = None,
    share: float | None = None,
    n: int | None = None,
    seed: int = 0,
    rubrics: str | Path | None = None,
    phi_policy: str | None = None,
    run_options: dict[str, Any] | None = None,
    subscribers: Iterable[object] = (),
    on_progress: Callable[[Counters], None] | None = None,
) -> GradingOutcome:
    """Sample the exchanges of ``[start, end)``, grade them as one run, store the score rows."""
    sets = rubric_sets(rubrics)
    if share is None and n is None:
        share = 0.05
    found = exchanges(store, since=start, until=end)
    sample = sample_exchanges(found, share=share, n=n, seed=seed)
    outcome = GradingOutcome(start, end, sample)
    if sample.textless:
        outcome.message = (
            f"{sample.textless} of {sample.in_window} exchange(s) in the window were stored without text "
            "(PHI policy) and cannot be graded"
        )
    if not sample.chosen:
        extra = "no gradable exchanges in the window"
        outcome.message = f"{outcome.message}; {extra}" if outcome.message else extra
        return outcome
    data, responses = window_rows(sample.chosen, sets)
    outcome.languages = dict(Counter(next(t for t in row["example_tags"] if t.startswith("language:")) for row in data))
    data_path, responses_path = write_window(data, responses, start, end)
    options = {
        "data": str(data_path),
        "responses": str(responses_path),
        "completions": "given",
        "grader": grader,
        "grader_base_url": grader_base_url,
        "grader_api_key_env": grader_api_key_env,
        "seed": seed,
        **(run_options or {}),
    }
    config = healthbench_config(options, explicit=[k for k, v in options.items() if v is not None])
    bus = EventBus(run_subscribers(store, subscribers, phi_policy=phi_policy))
    result = evaluate(config, store, kinds=None, bus=bus, on_progress=on_progress)
    outcome.run_id, outcome.status, outcome.exit_code = result.run_id, result.status, result.exit_code
    if result.message:
        outcome.message = f"{outcome.message}; {result.message}" if outcome.message else result.message
    per_item = per_item_scores(store, result.run_id)
    tags_by_index = {index: row["example_tags"] for index, row in enumerate(data)}
    details = {
        "in_window": sample.in_window,
        "textless": sample.textless,
        "sampled": len(sample.chosen),
        "graded": len(per_item),
        "run_status": result.status,
        "seed": seed,
        "share": share,
        "sample_n": n,
    }
    outcome.rows = score_rows(per_item, tags_by_index, start=start, end=end, run_id=result.run_id, details=details)
    add_scores(store, outcome.rows)
    return outcome
