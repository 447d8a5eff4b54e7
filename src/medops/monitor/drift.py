"""Drift: statistics of a window of production exchanges, compared with a reference window.

What each window is summarised by (``window_stats``):

- **prompt_length**: characters of the user turns of the request (system and assistant turns
  are left out: they are mostly the application's own text);
- **language_mix**: each request's user text is ``ko`` when it has more Hangul than Latin
  letters, ``en`` when it has Latin letters and at least as many as Hangul, else ``other``
  (digits, punctuation and other scripts do not count; a request with no text is left out);
- **department_mix**, **application_mix**: the tags the gateway recorded (``(none)`` when untagged);
- **response_length**: characters of the answer; **refusal_rate**: the share of answers that
  match one of ``REFUSAL_PATTERNS`` (English and Korean);
- **finish_reasons**: ``stop``, ``length``, ``content_filter``, ... as the model reported them;
- **latency_s** (and its p50 / p95); **error_rate**: the share of exchanges with an HTTP status
  >= 400 or an error.

How a current window is compared with the reference (``compare``):

- **PSI** (population stability index), for numeric and categorical metrics:
  ``sum((cur - ref) * ln(cur / ref))`` over bins, with shares of each window per bin. Numeric
  values are binned at the reference's deciles (bin i is ``(q_i, q_i+1]``; repeated deciles
  are merged, as when most values are equal), plus one bin below the reference's smallest value
  and one above its largest (empty in the reference by construction: values never seen before
  count as drift even when the deciles collapse); categories are their own bins. A bin empty in
  one window gets the share ``PSI_EPSILON`` (1e-4) instead of 0, so the logarithm is finite.
  Conventions: < 0.1 no real change, 0.1-0.25 a moderate shift, > 0.25 a major shift.
- **chi-square** (categorical): the test of independence of a 2 x K table of counts
  (``scipy.stats.chi2_contingency``, Yates-corrected when K = 2); p small = the mixes differ.
- **Kolmogorov-Smirnov** (numeric): the largest gap between the two empirical distribution
  functions (``scipy.stats.ks_2samp``); p small = the distributions differ.
- **two-proportion z-test** (rates): pooled-variance z of the current share against the
  reference share, one-sided in the harmful direction (up for refusal and error rates).
- **CUSUM** (score series, ``cusum``): one-sided tabular CUSUM of the points standardised by the
  reference points' mean and sd, ``S_i = max(0, S_i-1 + z_i - k)`` (``-z_i`` for a drop); an
  alarm when ``S_i > h``. Defaults k = 0.5 (tuned to a shift of one sd) and h = 5: on normal
  in-control data about one false alarm per ~900 points, a sustained one-sd drop is found after
  about 10 points.

**Embedding drift** (``prompt_embedding``, when the policy names an ``embedding_model``): the
user text of each window's requests, embedded by a local model and compared by an MMD
permutation test (``medops.monitor.embeddings``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from medops.content import text_of
from medops.monitor.policy import CATEGORICAL, EMBEDDING, NUMERIC, POINTS, RATES
from medops.monitor.windows import as_utc
from medops.store.exchanges import exchanges as read_exchanges
from medops.store.repository import Store
from medops.store.schema import Exchange
from medops.store.scores import scores as read_scores

PSI_EPSILON = 1e-4  # the share given to a bin that is empty in one window
PSI_BINS = 10  # numeric PSI: reference deciles
CUSUM_K = 0.5
CUSUM_H = 5.0

# Answers that decline to help, in English and Korean (case-insensitive, anywhere in the answer).
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:'|no)t|cannot|am unable to|won't)",
    r"\bI can(?:'|no)t (?:help|assist|provide|answer|give|do that|comply)",
    r"\bI cannot (?:help|assist|provide|answer|give|do that|comply)",
    r"\bI(?:'m| am) (?:not able|unable) to (?:help|assist|provide|answer|give)",
    r"\bI won't be able to (?:help|assist|provide|answer)",
    r"\bAs an AI(?: language model)?, I (?:can(?:'|no)t|cannot|am not able)",
    r"죄송하지만",
    r"죄송합니다만",
    r"도와드릴 수 없",
    r"도움을 드릴 수 없",
    r"답변(?:을|해)? ?드릴 수 없",
    r"제공(?:해)? ?드릴 수 없",
    r"답변하기 어렵",
)
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS), re.IGNORECASE)
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def user_text(messages: Any) -> str | None:
    """The user turns' text, joined by newlines (None when the request's messages were not stored)."""
    if not isinstance(messages, list):
        return None
    return "\n".join(text_of(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user")


def language_of(text: str) -> str | None:
    """ko | en | other by Hangul vs Latin letters; None for empty text."""
    if not text.strip():
        return None
    hangul, latin = len(_HANGUL.findall(text)), len(_LATIN.findall(text))
    if hangul > latin:
        return "ko"
    if latin:
        return "en"
    return "other"


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text))


def is_error(exchange: Exchange) -> bool:
    return bool(exchange.error) or (exchange.status is not None and exchange.status >= 400)


@dataclass
class WindowStats:
    """One window of exchanges, summarised."""

    n: int = 0
    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in NUMERIC})
    counts: dict[str, Counter] = field(default_factory=lambda: {m: Counter() for m in CATEGORICAL})
    rates: dict[str, list[int]] = field(default_factory=lambda: {m: [0, 0] for m in RATES})  # [hits, of]
    prompts: list[str] = field(default_factory=list)  # user text (prompt_embedding), non-empty only

    def point(self, metric: str) -> float | None:
        """latency_p50_s, latency_p95_s, prompt_length_mean, response_length_mean; None when empty."""
        if metric in ("latency_p50_s", "latency_p95_s"):
            values = self.values["latency_s"]
            q = 50 if metric == "latency_p50_s" else 95
            return float(np.percentile(values, q)) if values else None
        values = self.values[metric.removesuffix("_mean")]
        return float(np.mean(values)) if values else None

    def rate(self, metric: str) -> float | None:
        hits, of = self.rates[metric]
        return hits / of if of else None

    def size(self, metric: str) -> int:
        """How many values the metric has in this window."""
        if metric in NUMERIC:
            return len(self.values[metric])
        if metric in CATEGORICAL:
            return sum(self.counts[metric].values())
        if metric in RATES:
            return self.rates[metric][1]
        if metric in EMBEDDING:
            return len(self.prompts)
        if metric in POINTS:
            return self.size("latency_s" if metric.startswith("latency") else metric.removesuffix("_mean"))
        return self.n


def window_stats(rows: Iterable[Exchange]) -> WindowStats:
    stats = WindowStats()
    for ex in rows:
        stats.n += 1
        text = user_text(ex.messages)
        if text is not None:
            stats.values["prompt_length"].append(float(len(text)))
            language = language_of(text)
            if language is not None:
                stats.counts["language_mix"][language] += 1
                stats.prompts.append(text)
        stats.counts["department_mix"][ex.department or "(none)"] += 1
        stats.counts["application_mix"][ex.application or "(none)"] += 1
        if ex.finish_reason:
            stats.counts["finish_reasons"][ex.finish_reason] += 1
        if ex.latency_s is not None:
            stats.values["latency_s"].append(float(ex.latency_s))
        if ex.response is not None:
            stats.values["response_length"].append(float(len(ex.response)))
            stats.rates["refusal_rate"][0] += is_refusal(ex.response)
            stats.rates["refusal_rate"][1] += 1
        stats.rates["error_rate"][0] += is_error(ex)
        stats.rates["error_rate"][1] += 1
    return stats


@dataclass(frozen=True)
class Span:
    """A half-open time range ``[start, end)``."""

    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, str]:
        return {"start": iso(self.start), "end": iso(self.end)}


def iso(value: datetime) -> str:
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def spans(now: datetime, window: timedelta, reference: timedelta, since: datetime | None = None) -> tuple[Span, Span]:
    """The current window (``[now - window, now)``, or ``[since, now)``) and the reference just before it."""
    start = as_utc(since) if since is not None else now - window
    return Span(start, now), Span(start - reference, start)


def stats_for(
    store: Store,
    span: Span,
    *,
    arm: str | None = None,
    department: str | None = None,
    application: str | None = None,
) -> WindowStats:
    rows = read_exchanges(store, since=span.start, until=span.end, arm=arm)
    if department is not None:
        rows = [r for r in rows if r.department == department]
    if application is not None:
        rows = [r for r in rows if r.application == application]
    return window_stats(rows)


# --- comparisons -------------------------------------------------------------------------


def _psi_shares(ref: np.ndarray, cur: np.ndarray, epsilon: float) -> float:
    ref_share, cur_share = np.maximum(ref, epsilon), np.maximum(cur, epsilon)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def psi_numeric(
    reference: Sequence[float], current: Sequence[float], *, bins: int = PSI_BINS, epsilon: float = PSI_EPSILON
) -> float:
    """PSI with bins at the reference's quantiles (deciles by default); see the module doc."""
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if not len(ref) or not len(cur):
        raise ValueError("PSI needs values in both windows")
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    low, high = ref.min(), ref.max()

    def counts(values: np.ndarray) -> np.ndarray:
        index = np.searchsorted(edges, values, side="left") + 1
        index = np.where(values < low, 0, np.where(values > high, len(edges) + 2, index))
        return np.bincount(index, minlength=len(edges) + 3)

    return _psi_shares(counts(ref) / len(ref), counts(cur) / len(cur), epsilon)


def psi_categorical(reference: Counter, current: Counter, *, epsilon: float = PSI_EPSILON) -> float:
    """PSI over categories (the union of both windows'); see the module doc."""
    categories = sorted(set(reference) | set(current))
    ref = np.array([reference.get(c, 0) for c in categories], dtype=float)
    cur = np.array([current.get(c, 0) for c in categories], dtype=float)
    if not ref.sum() or not cur.sum():
        raise ValueError("PSI needs values in both windows")
    return _psi_shares(ref / ref.sum(), cur / cur.sum(), epsilon)


def chi2_test(reference: Counter, current: Counter) -> tuple[float, float]:
    """(statistic, p) of the chi-square test on the 2 x K table; (0, 1) when there is one category."""
    from scipy.stats import chi2_contingency

    categories = sorted(c for c in set(reference) | set(current) if reference.get(c, 0) + current.get(c, 0) > 0)
    if len(categories) < 2:
        return 0.0, 1.0
    table = np.array([[reference.get(c, 0) for c in categories], [current.get(c, 0) for c in categories]])
    result = chi2_contingency(table)
    return float(result[0]), float(result[1])


def ks_test(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def two_proportion_z(
    hits_ref: int, n_ref: int, hits_cur: int, n_cur: int, *, direction: str = "up"
) -> tuple[float, float]:
    """(z, one-sided p) for the current share being higher (``up``) or lower (``down``) than the reference."""
    from scipy.stats import norm

    pooled = (hits_ref + hits_cur) / (n_ref + n_cur)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    diff = hits_cur / n_cur - hits_ref / n_ref
    if se == 0:
        return 0.0, 1.0  # both windows all hits or all misses: nothing to test
    z = diff / se
    return z, float(norm.sf(z) if direction == "up" else norm.cdf(z))


def reference_sd(values: Sequence[float]) -> float | None:
    """The sample sd of the reference points; None for fewer than 2 points or no spread (all equal,
    up to rounding), when standardising by it would be meaningless."""
    if len(values) < 2:
        return None
    sd = float(np.std(values, ddof=1))
    return sd if sd > 1e-9 * max(1.0, float(np.max(np.abs(values)))) else None


@dataclass(frozen=True)
class Cusum:
    statistic: float  # the largest S_i over the points
    alarm_at: int | None  # index of the first point with S_i > h, or None
    path: list[float]


def cusum(
    values: Sequence[float],
    mean: float,
    sd: float,
    *,
    k: float = CUSUM_K,
    h: float = CUSUM_H,
    direction: str = "down",
) -> Cusum:
    """One-sided tabular CUSUM of ``values`` standardised by the reference ``mean`` and ``sd``."""
    if sd <= 0:
        raise ValueError("CUSUM needs a reference sd > 0")
    sign = -1.0 if direction == "down" else 1.0
    s, path, alarm = 0.0, [], None
    for i, value in enumerate(values):
        s = max(0.0, s + sign * (value - mean) / sd - k)
        path.append(s)
        if alarm is None and s > h:
            alarm = i
    return Cusum(max(path, default=0.0), alarm, path)


# --- the drift table ---------------------------------------------------------------------


@dataclass
class DriftRow:
    metric: str
    kind: str  # numeric | categorical | rate | score
    n_reference: int
    n_current: int
    reference: Any  # a summary: mean, shares, rate
    current: Any
    psi: float | None = None
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shares(counts: Counter) -> dict[str, float]:
    total = sum(counts.values())
    return {k: round(v / total, 4) for k, v in counts.most_common()} if total else {}


def drift_row(metric: str, ref: WindowStats, cur: WindowStats, *, min_samples: int = 1) -> DriftRow:
    """Every comparison of one exchange metric, as the ``monitor drift`` table shows it."""
    n_ref, n_cur = ref.size(metric), cur.size(metric)
    enough = n_ref >= min_samples and n_cur >= min_samples
    note = None if enough else f"fewer than {min_samples} values in a window"
    if metric in NUMERIC:
        r, c = ref.values[metric], cur.values[metric]
        row = DriftRow(
            metric,
            "numeric",
            n_ref,
            n_cur,
            round(float(np.mean(r)), 4) if r else None,
            round(float(np.mean(c)), 4) if c else None,
            note=note,
        )
        if enough:
            row.psi = psi_numeric(r, c)
            row.test = "ks"
            row.statistic, row.p_value = ks_test(r, c)
        return row
    if metric in CATEGORICAL:
        r, c = ref.counts[metric], cur.counts[metric]
        row = DriftRow(metric, "categorical", n_ref, n_cur, _shares(r), _shares(c), note=note)
        if enough:
            row.psi = psi_categorical(r, c)
            row.test = "chi2"
            row.statistic, row.p_value = chi2_test(r, c)
        return row
    rate_ref, rate_cur = ref.rate(metric), cur.rate(metric)
    row = DriftRow(
        metric,
        "rate",
        n_ref,
        n_cur,
        None if rate_ref is None else round(rate_ref, 4),
        None if rate_cur is None else round(rate_cur, 4),
        note=note,
    )
    if enough:
        row.test = "ztest"
        row.statistic, row.p_value = two_proportion_z(*ref.rates[metric], *cur.rates[metric])
    return row


def score_rows(store: Store, current: Span, reference: Span, *, tag: str = "all") -> list[DriftRow]:
    """Quality drift: each online / canary score series (one tag) with points in either window:
    the means of its points, and the CUSUM (down, default k and h) of the current points against
    the reference points (when the reference has >= 2 points with some spread)."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for point in read_scores(store, since=reference.start, until=current.end, tag=tag):
        if point.value is None or point.source not in ("online", "canary"):
            continue
        ref_values, cur_values = series.setdefault(f"{point.source}:{point.metric}", ([], []))
        (cur_values if point.window_start >= current.start else ref_values).append(float(point.value))
    rows = []
    for metric, (ref_values, cur_values) in sorted(series.items()):
        row = DriftRow(
            metric,
            "score",
            len(ref_values),
            len(cur_values),
            round(float(np.mean(ref_values)), 4) if ref_values else None,
            round(float(np.mean(cur_values)), 4) if cur_values else None,
        )
        sd = reference_sd(ref_values)
        if cur_values and sd is not None:
            row.test, row.statistic = "cusum", cusum(cur_values, float(np.mean(ref_values)), sd).statistic
        else:
            row.note = "CUSUM needs current points and >= 2 reference points with some spread"
        rows.append(row)
    return rows


def drift_table(
    store: Store,
    *,
    window: timedelta,
    reference: timedelta,
    now: datetime | None = None,
    since: datetime | None = None,
    arm: str | None = "primary",
    min_samples: int = 20,
) -> dict[str, Any]:
    """Every exchange metric of the current window against the reference, then every score series
    (``medops monitor drift``)."""
    current_span, reference_span = spans(now or datetime.now(timezone.utc), window, reference, since)
    ref, cur = stats_for(store, reference_span, arm=arm), stats_for(store, current_span, arm=arm)
    rows = [drift_row(m, ref, cur, min_samples=min_samples) for m in (*NUMERIC, *CATEGORICAL, *RATES)]
    rows += score_rows(store, current_span, reference_span)
    return {
        "current": {**current_span.to_dict(), "exchanges": cur.n},
        "reference": {**reference_span.to_dict(), "exchanges": ref.n},
        "arm": arm,
        "min_samples": min_samples,
        "latency_p95_s": {"reference": ref.point("latency_p95_s"), "current": cur.point("latency_p95_s")},
        "metrics": [row.to_dict() for row in rows],
    }
