"""Alerts: evaluate a monitor policy's rules, fire what fails, deliver to webhooks.

``evaluate`` turns each rule into a ``Finding`` (``ok``, ``failed`` or ``skipped`` when a window
has too little data). ``check`` fires every failed finding whose de-duplication key (rule name
+ scope) has not fired within the cooldown (the last alert with that key is read from the
store); a failed finding inside the cooldown is ``suppressed``: printed, not stored or sent
again. A fired alert is stored (``alerts``), posted to every webhook (generic JSON or
Slack-compatible ``{"text": ...}``; a short timeout and one retry; a failure is recorded in the
alert's ``deliveries`` and never raised) and recorded in the audit trail as ``alert.fired``
(alert id, rule, key, metric and value only; recorded before delivery). A rule with
``action: retrain`` then starts retraining (``monitor/retrain.py``), reported in the finding's
``retrain``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from medops import __version__
from medops.audit.trail import record
from medops.monitor.drift import (
    Span,
    WindowStats,
    chi2_test,
    cusum,
    ks_test,
    psi_categorical,
    psi_numeric,
    reference_sd,
    spans,
    stats_for,
    two_proportion_z,
)
from medops.monitor.embeddings import Embedder, mmd_test, sample
from medops.monitor.policy import MonitorPolicy, MonitorRule, Webhook, metric_kind
from medops.monitor.retrain import start_retraining
from medops.monitor.windows import as_utc, format_duration
from medops.store.alerts import fire_alert, set_deliveries
from medops.store.repository import Store
from medops.store.scores import scores

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
FIRED, SUPPRESSED = "fired", "suppressed"
RETRY_DELAY_S = 0.5
# Finding fields the alert row holds in columns of their own (or that describe this round only).
_NOT_DETAILS = {"rule", "key", "severity", "message", "deliveries", "outcome", "alert_id", "retrain"}


@dataclass
class Finding:
    rule: str
    key: str
    scope: str
    metric: str | None
    test: str | None
    severity: str
    status: str  # ok | failed | skipped
    value: float | None
    threshold: dict[str, float]
    message: str
    window: dict[str, Any]
    p_value: float | None = None
    n_current: int | None = None
    n_reference: int | None = None
    outcome: str | None = None  # failed findings: fired | suppressed
    alert_id: int | None = None  # the alert stored now (fired) or the one that suppresses it
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    retrain: dict[str, Any] | None = None  # action retrain: what was started, skipped or would run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class _Context:
    """Reads each window once per round, whatever the number of rules on it."""

    def __init__(self, store: Store, policy: MonitorPolicy, now: datetime, since: datetime | None):
        self.store, self.policy, self.now, self.since = store, policy, now, since
        self._stats: dict[tuple, WindowStats] = {}
        self._embedder: Embedder | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        """The policy's embedding model (loaded on first use) applied to a seeded sample of texts."""
        if self._embedder is None:
            assert self.policy.embedding_model is not None  # the policy requires it for these rules
            self._embedder = Embedder(self.policy.embedding_model)
        return self._embedder(sample(texts))

    def spans(self, rule: MonitorRule) -> tuple[Span, Span]:
        return spans(self.now, self.policy.window_of(rule), self.policy.reference_of(rule), self.since)

    def stats(self, span: Span, rule: MonitorRule) -> WindowStats:
        key = (span, self.policy.arm_of(rule), rule.department, rule.application)
        if key not in self._stats:
            self._stats[key] = stats_for(
                self.store, span, arm=key[1], department=rule.department, application=rule.application
            )
        return self._stats[key]


def _window(current: Span, reference: Span) -> dict[str, Any]:
    return {
        "span": format_duration(current.end - current.start),
        **current.to_dict(),
        "reference": {"span": format_duration(reference.end - reference.start), **reference.to_dict()},
    }


def _value_check(rule: MonitorRule, value: float) -> tuple[bool, str]:
    if rule.min is not None and value < rule.min:
        return False, f"{_fmt(value)} < min {rule.min:g}"
    if rule.max is not None and value > rule.max:
        return False, f"{_fmt(value)} > max {rule.max:g}"
    bounds = " and ".join(
        b
        for b in (
            f">= {rule.min:g}" if rule.min is not None else "",
            f"<= {rule.max:g}" if rule.max is not None else "",
        )
        if b
    )
    return True, f"{_fmt(value)} {bounds}"


def _threshold(rule: MonitorRule) -> dict[str, float]:
    if rule.min_exchanges is not None:
        return {"min_exchanges": rule.min_exchanges}
    if rule.effective_test == "cusum":
        return {"h": rule.cusum_h, "k": rule.cusum_k}
    return {f: getattr(rule, f) for f in ("min", "max", "max_p") if getattr(rule, f) is not None}


def evaluate_rule(ctx: _Context, rule: MonitorRule) -> Finding:
    current, reference = ctx.spans(rule)
    finding = Finding(
        rule=rule.label,
        key=rule.key,
        scope=rule.scope,
        metric=rule.metric,
        test=rule.effective_test,
        severity=rule.severity,
        status=OK,
        value=None,
        threshold=_threshold(rule),
        message="",
        window=_window(current, reference),
    )
    span_text = finding.window["span"]

    def done(status: str, value: float | None, message: str, **extra: Any) -> Finding:
        finding.status, finding.value, finding.message = status, value, message
        for name, v in extra.items():
            setattr(finding, name, v)
        return finding

    if rule.min_exchanges is not None:
        n = ctx.stats(current, rule).n
        passed = n >= rule.min_exchanges
        return done(
            OK if passed else FAILED,
            float(n),
            f"{n} exchanges in the last {span_text} ({'>=' if passed else '<'} {rule.min_exchanges})",
            n_current=n,
        )
    assert rule.metric is not None
    kind = metric_kind(rule.metric)
    if kind == "score":
        return _score_finding(ctx, rule, current, reference, done)
    cur = ctx.stats(current, rule)
    test, minimum = rule.effective_test, ctx.policy.min_samples
    n_cur = cur.size(rule.metric)
    if test is None:  # the current window's value against min / max
        if n_cur < minimum:
            return done(SKIPPED, None, f"{n_cur} values of {rule.metric} in the last {span_text} (< {minimum})")
        value = cur.rate(rule.metric) if kind == "rate" else cur.point(rule.metric)
        assert value is not None
        passed, detail = _value_check(rule, value)
        return done(
            OK if passed else FAILED,
            value,
            f"{rule.metric} {detail} over the last {span_text} ({n_cur} values)",
            n_current=n_cur,
        )
    ref = ctx.stats(reference, rule)
    n_ref = ref.size(rule.metric)
    if n_cur < minimum or n_ref < minimum:
        return done(
            SKIPPED,
            None,
            f"{rule.metric}: {n_ref} reference and {n_cur} current values (each needs >= {minimum})",
            n_current=n_cur,
            n_reference=n_ref,
        )
    sizes = f"{span_text} window: {n_cur} values, reference {finding.window['reference']['span']}: {n_ref}"
    if test == "psi":
        if kind == "numeric":
            value = psi_numeric(ref.values[rule.metric], cur.values[rule.metric])
        else:
            value = psi_categorical(ref.counts[rule.metric], cur.counts[rule.metric])
        assert rule.max is not None
        passed = value <= rule.max
        return done(
            OK if passed else FAILED,
            value,
            f"PSI of {rule.metric} {_fmt(value)} {'<=' if passed else '>'} {rule.max:g} ({sizes})",
            n_current=n_cur,
            n_reference=n_ref,
        )
    if test == "chi2":
        statistic, p = chi2_test(ref.counts[rule.metric], cur.counts[rule.metric])
    elif test == "ks":
        statistic, p = ks_test(ref.values[rule.metric], cur.values[rule.metric])
    elif test == "mmd":
        statistic, p = mmd_test(ctx.embed(ref.prompts), ctx.embed(cur.prompts))
    else:  # ztest
        statistic, p = two_proportion_z(
            *ref.rates[rule.metric], *cur.rates[rule.metric], direction=rule.ztest_direction
        )
    assert rule.max_p is not None
    passed = p >= rule.max_p
    return done(
        OK if passed else FAILED,
        statistic,
        f"{test} of {rule.metric}: statistic {_fmt(statistic)}, p={p:.3g} {'>=' if passed else '<'} {rule.max_p:g} "
        f"({sizes})",
        p_value=p,
        n_current=n_cur,
        n_reference=n_ref,
    )


def _score_values(ctx: _Context, rule: MonitorRule, span: Span) -> tuple[list[float], list[int]]:
    source, _, name = str(rule.metric).partition(":")
    points = [
        p
        for p in scores(ctx.store, source=source, since=span.start, until=span.end, tag=rule.tag, metric=name)
        if p.value is not None
    ]
    return [float(p.value) for p in points], [int(p.n or 0) for p in points]  # type: ignore[arg-type]


def _score_finding(ctx: _Context, rule: MonitorRule, current: Span, reference: Span, done: Callable) -> Finding:
    values, weights = _score_values(ctx, rule, current)
    span_text = format_duration(current.end - current.start)
    if not values:
        return done(SKIPPED, None, f"no {rule.metric} points (tag {rule.tag}) in the last {span_text}", n_current=0)
    if rule.effective_test is None:
        # The window's score: its points' mean, weighted by how many items each point scored.
        value = float(np.average(values, weights=weights)) if all(w > 0 for w in weights) else float(np.mean(values))
        passed, detail = _value_check(rule, value)
        return done(
            OK if passed else FAILED,
            value,
            f"{rule.metric} (tag {rule.tag}) {detail} over the last {span_text} ({len(values)} points)",
            n_current=len(values),
        )
    ref_values, _ = _score_values(ctx, rule, reference)
    sd = reference_sd(ref_values)
    if sd is None:
        return done(
            SKIPPED,
            None,
            f"CUSUM of {rule.metric}: the reference has {len(ref_values)} points"
            + (" with no spread" if len(ref_values) >= 2 else " (needs >= 2)"),
            n_current=len(values),
            n_reference=len(ref_values),
        )
    mean = float(np.mean(ref_values))
    result = cusum(values, mean, sd, k=rule.cusum_k, h=rule.cusum_h, direction=rule.cusum_direction)
    passed = result.alarm_at is None
    shift = "drop" if rule.cusum_direction == "down" else "rise"
    return done(
        OK if passed else FAILED,
        result.statistic,
        f"CUSUM of {rule.metric} (tag {rule.tag}) {_fmt(result.statistic)} {'<=' if passed else '>'} h={rule.cusum_h:g}"
        + ("" if passed else f": a sustained {shift} from the reference mean {mean:.4g} (sd {sd:.3g})")
        + f" over {len(values)} points in the last {span_text}",
        n_current=len(values),
        n_reference=len(ref_values),
    )


def evaluate(
    store: Store, policy: MonitorPolicy, *, now: datetime | None = None, since: datetime | None = None
) -> list[Finding]:
    """Every rule of the policy against the current window (``[now - window, now)`` or ``[since, now)``)."""
    ctx = _Context(store, policy, as_utc(now) if now else datetime.now(timezone.utc), since)
    return [evaluate_rule(ctx, rule) for rule in policy.rules]


# --- delivery ----------------------------------------------------------------------------


def payload(finding: Finding, alert_id: int, fired_at: datetime, webhook_format: str) -> dict[str, Any]:
    """The body posted for an alert: generic JSON, or Slack's ``{"text": ...}`` with the same facts."""
    alert = {"id": alert_id, "key": finding.key, "severity": finding.severity, "fired_at": fired_at.isoformat()}
    generic = {
        "alert": alert,
        "rule": finding.rule,
        "metric": finding.metric,
        "value": finding.value,
        "threshold": finding.threshold,
        "window": finding.window,
        "message": finding.message,
        "medops_version": __version__,
    }
    if webhook_format == "json":
        return generic
    window = finding.window
    threshold = ", ".join(f"{k} {v:g}" for k, v in finding.threshold.items())
    text = (
        f"*medops alert* `{finding.rule}` ({finding.severity}): {finding.message}\n"
        f"metric: {finding.metric or 'exchanges'} | value: {_fmt(finding.value)} | threshold: {threshold} | "
        f"window: {window['start']}..{window['end']} ({window['span']}) | scope: {finding.scope} | "
        f"alert {alert_id} | medops {__version__}"
    )
    return {"text": text}


Poster = Callable[[str, bytes, float], int]  # (url, body, timeout) -> HTTP status; raises on failure


def http_post(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"medops/{__version__}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only: checked by the policy
        return int(response.status)


def deliver(webhook: Webhook, url: str, body: dict[str, Any], *, post: Poster = http_post) -> dict[str, Any]:
    """POST once, and once more after a short pause when the first try fails; never raises.

    The result names the webhook, never its URL (a Slack URL is a credential)."""
    data = json.dumps(body, ensure_ascii=False).encode()
    result: dict[str, Any] = {"webhook": webhook.name, "format": webhook.format, "ok": False, "status": None}
    for attempt in (1, 2):
        result["attempts"] = attempt
        try:
            status = post(url, data, webhook.timeout_s)
        except urllib.error.HTTPError as exc:
            result.update(status=exc.code, error=f"HTTP {exc.code}")
            if exc.code < 500 and exc.code != 429:
                break  # the receiver refused this body: sending it again changes nothing
        except Exception as exc:  # a delivery failure is recorded, never raised
            reason = getattr(exc, "reason", None) or exc
            result.update(status=None, error=f"{type(exc).__name__}: {reason}")
        else:
            result.update(
                status=status, ok=200 <= status < 300, error=None if 200 <= status < 300 else f"HTTP {status}"
            )
            if result["ok"]:
                break
        if attempt == 1:
            time.sleep(RETRY_DELAY_S)
    return result


@dataclass
class CheckResult:
    findings: list[Finding]

    @property
    def fired(self) -> list[Finding]:
        return [f for f in self.findings if f.outcome == FIRED]

    @property
    def suppressed(self) -> list[Finding]:
        return [f for f in self.findings if f.outcome == SUPPRESSED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fired": len(self.fired),
            "suppressed": len(self.suppressed),
            "failed": sum(f.status == FAILED for f in self.findings),
            "skipped": sum(f.status == SKIPPED for f in self.findings),
            "findings": [f.to_dict() for f in self.findings],
        }


def check(
    store: Store,
    policy: MonitorPolicy,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    post: Poster = http_post,
) -> CheckResult:
    """One round of ``monitor check``: evaluate, fire (cooldown and de-duplication), deliver, record."""
    urls = {w.name: w.resolved_url() for w in policy.webhooks}  # a missing url_env: UserError before anything
    moment = as_utc(now) if now else datetime.now(timezone.utc)
    findings = evaluate(store, policy, now=moment, since=since)
    rules = {rule.key: rule for rule in policy.rules}
    for finding in findings:
        if finding.status != FAILED:
            continue
        details = {k: v for k, v in finding.to_dict().items() if k not in _NOT_DETAILS}
        # the cooldown's read and the insert in one locked transaction: two checks at once fire once
        alert_id, fired = fire_alert(
            store,
            rule=finding.rule,
            key=finding.key,
            severity=finding.severity,
            message=finding.message,
            details=details,
            created_at=moment,
            quiet_after=moment - policy.cooldown_of(rules[finding.key]),
        )
        if not fired:
            finding.outcome, finding.alert_id = SUPPRESSED, alert_id
            continue
        finding.outcome, finding.alert_id = FIRED, alert_id
        # In the trail before anything is sent: a check killed mid-delivery leaves no alert unaudited.
        audit = {"alert_id": alert_id, "rule": finding.rule, "key": finding.key, "metric": finding.metric}
        record(store, "alert.fired", f"alert:{alert_id}", {**audit, "value": finding.value})
        finding.deliveries = [
            deliver(w, urls[w.name], payload(finding, alert_id, moment, w.format), post=post) for w in policy.webhooks
        ]
        set_deliveries(store, alert_id, finding.deliveries)
        rule = rules[finding.key]
        if rule.action == "retrain":
            finding.retrain = start_retraining(store, policy, rule, alert_id, finding.window, moment)
    return CheckResult(findings)
