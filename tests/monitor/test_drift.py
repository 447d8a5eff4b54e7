"""Drift statistics: window summaries of exchanges, PSI / chi-square / KS / z against hand and scipy
numbers, CUSUM on score series, and the monitor policy's one-line errors."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp, norm

from medops.errors import UserError
from medops.monitor.drift import (
    PSI_EPSILON,
    chi2_test,
    cusum,
    drift_table,
    is_refusal,
    ks_test,
    language_of,
    psi_categorical,
    psi_numeric,
    two_proportion_z,
    user_text,
    window_stats,
)
from medops.monitor.policy import load_monitor_policy
from medops.store.exchanges import insert_exchanges
from medops.store.repository import Store
from medops.store.schema import Exchange
from medops.store.scores import add_scores

REPO = Path(__file__).resolve().parents[2]


def exchange(text: str, response: str = "Rest and drink water.", **fields) -> dict:
    row = {
        "source": "gateway",
        "route": "/v1/chat/completions",
        "model": "m",
        "status": 200,
        "latency_s": 1.0,
        "finish_reason": "stop",
        "messages": [{"role": "system", "content": "You are a clinical assistant."}, {"role": "user", "content": text}],
        "response": response,
    }
    return {**row, **fields}


def traffic(now: datetime) -> list[dict]:
    """A reference week of short English prompts, then a current hour of long Korean prompts with
    more refusals."""
    rows = []
    for i in range(140):  # spread over the 7 days before the last hour
        at = now - timedelta(hours=1) - timedelta(minutes=70 * (i + 1))
        text = "I have a headache" + "!" * (i % 7)
        answer = "I can't help with that." if i % 20 == 0 else "Rest, fluids, and see a doctor if it persists."
        rows.append(exchange(text, answer, created_at=at, department="ER" if i % 2 else "IM", latency_s=1 + i % 3))
    for i in range(40):  # the last hour
        at = now - timedelta(minutes=1 + i)
        text = "두통이 심하고 열이 나며 구토도 합니다. 어떻게 해야 하나요? " * (3 + i % 4)
        answer = "죄송하지만 그 질문에는 답변드릴 수 없습니다." if i % 3 == 0 else "물을 충분히 드시고 쉬세요."
        rows.append(exchange(text, answer, created_at=at, department="ER", latency_s=2 + i % 5))
    return rows


# --- the statistics against hand and scipy numbers ---------------------------------------


def test_psi_categorical_matches_hand_computation():
    value = psi_categorical(Counter(en=80, ko=20), Counter(en=20, ko=80))
    assert value == pytest.approx(2 * 0.6 * math.log(4))
    # a category absent from the reference gets the share epsilon
    value = psi_categorical(Counter(en=10), Counter(en=5, ko=5))
    expected = (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON) + (0.5 - 1.0) * math.log(0.5 / 1.0)
    assert value == pytest.approx(expected)
    assert psi_categorical(Counter(en=50, ko=50), Counter(en=5, ko=5)) == pytest.approx(0.0)


def test_psi_numeric_uses_reference_quantile_bins():
    # two bins at the reference median 2.5: reference shares 0.5 / 0.5, current 0.75 / 0.25
    value = psi_numeric([1, 2, 3, 4], [1, 1, 1, 4], bins=2)
    assert value == pytest.approx(0.25 * math.log(1.5) + (-0.25) * math.log(0.5))
    # deciles of 1..10: one reference value per bin; the current window fills only the outer two
    value = psi_numeric(list(range(1, 11)), [1] * 5 + [10] * 5)
    expected = 2 * (0.5 - 0.1) * math.log(5) + 8 * (PSI_EPSILON - 0.1) * math.log(PSI_EPSILON / 0.1)
    assert value == pytest.approx(expected)
    assert psi_numeric(list(range(100)), list(range(100))) == pytest.approx(0.0)
    # collapsed deciles (edges 9.5, 10): values below anything in the reference still count
    eps = PSI_EPSILON
    value = psi_numeric([5] * 10 + [10] * 90, [3] * 20)
    expected = (1 - eps) * math.log(1 / eps) + (eps - 0.1) * math.log(eps / 0.1) + (eps - 0.9) * math.log(eps / 0.9)
    assert value == pytest.approx(expected)


def test_chi2_ks_and_z_match_scipy():
    statistic, p = chi2_test(Counter(en=80, ko=20), Counter(en=20, ko=75, other=5))
    expected = chi2_contingency(np.array([[80, 20, 0], [20, 75, 5]]))  # columns: en, ko, other
    assert (statistic, p) == pytest.approx((expected[0], expected[1]))
    assert chi2_test(Counter(en=3), Counter(en=9)) == (0.0, 1.0)  # one category: nothing to test

    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(0.5, 1, 40)
    result = ks_2samp(a, b)
    assert ks_test(a, b) == pytest.approx((result.statistic, result.pvalue))

    z, p = two_proportion_z(10, 100, 30, 100)
    pooled = 40 / 200
    z_hand = (0.3 - 0.1) / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert z == pytest.approx(z_hand) and p == pytest.approx(norm.sf(z_hand))
    assert two_proportion_z(10, 100, 30, 100, direction="down")[1] == pytest.approx(norm.cdf(z_hand))


def test_cusum_finds_a_sustained_drop_and_not_noise():
    rng = np.random.default_rng(7)
    reference = rng.normal(0.70, 0.05, 60)
    mean, sd = float(reference.mean()), float(reference.std(ddof=1))
    noise = rng.normal(0.70, 0.05, 40)
    assert cusum(noise, mean, sd).alarm_at is None
    dropped = np.concatenate([rng.normal(0.70, 0.05, 10), rng.normal(0.62, 0.05, 30)])  # -1.6 sd from point 10
    result = cusum(dropped, mean, sd)
    assert result.alarm_at is not None and 10 <= result.alarm_at < 25
    assert result.statistic > 5
    # a rise is not a drop, unless asked for
    assert cusum(noise + 0.1, mean, sd).alarm_at is None
    assert cusum(noise + 0.1, mean, sd, direction="up").alarm_at is not None
    # the recursion by hand: S = max(0, S - z - k)
    assert cusum([0.5, 0.5, 1.0], 1.0, 0.25, k=0.5, h=3).path == pytest.approx([1.5, 3.0, 2.5])


# --- window statistics -------------------------------------------------------------------


def test_language_refusal_and_user_text():
    assert language_of("두통이 있어요") == "ko"
    assert language_of("I have a headache") == "en"
    assert language_of("두통이 심해요 ok") == "ko"  # 6 Hangul letters against 2 Latin
    assert language_of("두통 headache") == "en"  # 2 Hangul against 8 Latin
    assert language_of("123 !!") == "other"
    assert language_of("  ") is None
    for text in ("I can't help with that.", "I cannot provide a diagnosis.", "죄송하지만 도와드릴 수 없습니다."):
        assert is_refusal(text), text
    for text in ("You can't take ibuprofen with this.", "죄송합니다. 늦게 답변드려요. 물을 드세요."):
        assert not is_refusal(text), text
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "ab"}, {"type": "image_url"}]},
        {"role": "assistant", "content": "zzz"},
        {"role": "user", "content": "cd"},
    ]
    assert user_text(messages) == "ab\ncd"
    assert user_text(None) is None


def test_window_stats_counts_what_it_should():
    rows = [
        Exchange(**exchange("hello", "I cannot help with that.", department="ER")),
        Exchange(**exchange("안녕하세요", "네.", latency_s=3.0, finish_reason="length")),
        Exchange(**exchange("x", None, status=502, error="upstream", latency_s=None, finish_reason=None)),
        Exchange(**{**exchange("", "ok"), "messages": None}),
    ]
    stats = window_stats(rows)
    assert stats.n == 4
    assert stats.values["prompt_length"] == [5.0, 5.0, 1.0]  # stored messages only, user turns only
    assert stats.counts["language_mix"] == Counter(en=2, ko=1)
    assert stats.counts["department_mix"] == Counter({"(none)": 3, "ER": 1})
    assert stats.counts["finish_reasons"] == Counter(stop=2, length=1)
    assert stats.rate("refusal_rate") == pytest.approx(1 / 3)  # of the three answers
    assert stats.rate("error_rate") == pytest.approx(1 / 4)
    assert stats.point("latency_p95_s") == pytest.approx(np.percentile([1.0, 3.0, 1.0], 95))


def test_drift_table_sees_korean_long_prompts_and_refusals(tmp_path):
    store = Store.open(str(tmp_path / "medops.db"))
    now = datetime.now(timezone.utc)
    insert_exchanges(store, traffic(now))
    table = drift_table(store, window=timedelta(hours=1), reference=timedelta(days=7), now=now)
    assert table["current"]["exchanges"] == 40 and table["reference"]["exchanges"] == 140
    rows = {row["metric"]: row for row in table["metrics"]}
    assert rows["prompt_length"]["psi"] > 0.25 and rows["prompt_length"]["p_value"] < 1e-6
    assert rows["language_mix"]["current"] == {"ko": 1.0} and rows["language_mix"]["reference"] == {"en": 1.0}
    assert rows["language_mix"]["p_value"] < 1e-6 and rows["language_mix"]["psi"] > 0.25
    assert rows["refusal_rate"]["current"] == pytest.approx(14 / 40)
    assert rows["refusal_rate"]["reference"] == pytest.approx(7 / 140)
    assert rows["refusal_rate"]["p_value"] < 0.001
    assert rows["error_rate"]["current"] == 0
    assert rows["finish_reasons"]["psi"] == pytest.approx(0.0)
    # too little data: a row without tests, and a note saying why
    small = drift_table(store, window=timedelta(hours=1), reference=timedelta(days=7), now=now, min_samples=500)
    assert all(row["psi"] is None and row["note"] for row in small["metrics"])


# --- the policy ----------------------------------------------------------------------------


def test_example_policy_loads(tmp_path):
    example = REPO / "docs" / "monitor.yaml"
    policy = load_monitor_policy(example)  # usable as it is: no webhook variables to set first
    assert policy.window == "1h" and policy.reference == "7d" and policy.webhooks == []
    keys = [rule.key for rule in policy.rules]
    assert "min_exchanges|all" in keys and "er-refusals|department=ER" in keys
    # its commented webhooks block, uncommented as the comment says, loads both webhooks
    text = example.read_text(encoding="utf-8")
    block = text[text.index("# webhooks:") :].split("\n\n")[0]
    uncommented = text.replace(block, "\n".join(line[2:] for line in block.splitlines()))
    (tmp_path / "monitor.yaml").write_text(uncommented, encoding="utf-8")
    assert [w.name for w in load_monitor_policy(tmp_path / "monitor.yaml").webhooks] == ["oncall", "slack"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules:\n  - {metric: prompt_length, test: psi}\n", "rules.0: psi needs max"),
        ("rules:\n  - {metric: words, max: 3}\n", "rules.0: unknown metric 'words'"),
        ("rules:\n  - {metric: language_mix, test: ks, max_p: 0.01}\n", "rules.0: language_mix is a categorical"),
        ("window: soon\nrules:\n  - {min_exchanges: 5}\n", "window: not a duration"),
        ("rules:\n  - {metric: refusal_rate, maximum: 0.1}\n", "rules.0.maximum: Extra inputs"),
        ("webhooks:\n  - {name: a, format: json}\nrules:\n  - {min_exchanges: 1}\n", "webhooks.0: each webhook sets"),
        ("rules: [\n", ":2: invalid YAML"),
        ("rules: []\n", "rules: List should have at least 1 item"),
    ],
)
def test_bad_policy_is_one_line_naming_file_and_field(tmp_path, text, expected):
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_monitor_policy(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_drift_table_has_quality_drift_of_score_series(tmp_path):
    store = Store.open(str(tmp_path / "medops.db"))
    now = datetime.now(timezone.utc)
    rng = np.random.default_rng(3)
    points = [(now - timedelta(days=7, hours=-h), 0.7 + rng.normal(0, 0.03)) for h in range(0, 140, 2)]
    points += [(now - timedelta(hours=23, minutes=-30 * i), 0.6 + rng.normal(0, 0.03)) for i in range(40)]
    add_scores(
        store,
        [
            {"source": "online", "metric": "overall_score", "window_start": at, "window_end": at, "value": v, "n": 10}
            for at, v in points
        ],
    )
    table = drift_table(store, window=timedelta(days=1), reference=timedelta(days=7), now=now)
    row = next(r for r in table["metrics"] if r["metric"] == "online:overall_score")
    assert (row["kind"], row["n_reference"], row["n_current"], row["test"]) == ("score", 70, 40, "cusum")
    assert row["reference"] == pytest.approx(0.7, abs=0.01) and row["current"] == pytest.approx(0.6, abs=0.01)
    assert row["statistic"] > 5  # a drop of about 3 sd, sustained: far past h
