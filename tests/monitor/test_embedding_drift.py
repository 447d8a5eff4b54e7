"""Embedding drift: the MMD permutation test on known distributions, and ``prompt_embedding``
rules in a monitor check, embedding real prompts with the packaged SmolLM2."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from medops.monitor.alerts import FAILED, OK, check
from medops.monitor.embeddings import mmd_test, sample
from medops.monitor.policy import MonitorPolicy
from medops.store.exchanges import insert_exchanges
from medops.store.repository import Store


def test_mmd_finds_a_shift_and_not_noise():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(60, 8))
    same = rng.normal(size=(60, 8))
    shifted = rng.normal(size=(60, 8)) + np.r_[0.8, np.zeros(7)]
    statistic, p_same = mmd_test(reference, same)
    shift_statistic, p_shifted = mmd_test(reference, shifted)
    assert p_same > 0.05 and p_shifted < 0.01 and shift_statistic > statistic
    assert mmd_test(reference, shifted) == (shift_statistic, p_shifted)  # seeded: the same answer twice
    with pytest.raises(ValueError, match="at least 2"):
        mmd_test(reference, shifted[:1])
    texts = [str(i) for i in range(500)]
    assert sample(texts) == sample(texts) and len(sample(texts)) == 200 and sample(texts[:5]) == texts[:5]


SYMPTOMS = ["a headache", "a fever", "a sore throat", "back pain", "a cough", "chest tightness", "dizziness"]
DURATIONS = ["since yesterday", "for three days", "for a week", "since this morning", "on and off for a month"]
ASKS = ["What should I do?", "Should I see a doctor?", "Is this serious?", "What can I take for it?"]
BILLING = [
    "How do I pay my hospital bill online?",
    "Can I get a copy of my invoice from last month?",
    "Why was I charged twice for parking?",
    "Which insurance plans does the clinic accept?",
    "How do I update my billing address?",
    "Can I set up a payment plan for the surgery costs?",
]


def symptom_prompts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"I have had {rng.choice(SYMPTOMS)} {rng.choice(DURATIONS)}. {rng.choice(ASKS)}" for _ in range(n)]


def billing_prompts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(BILLING)} {rng.choice(['Thanks.', 'Please help.', ''])}".strip() for _ in range(n)]


def exchanges(texts: list[str], start: datetime, step: timedelta) -> list[dict]:
    return [
        {
            "created_at": start + i * step,
            "source": "gateway",
            "route": "/v1/chat/completions",
            "status": 200,
            "messages": [{"role": "user", "content": text}],
            "response": "Rest and fluids.",
        }
        for i, text in enumerate(texts)
    ]


def test_prompt_embedding_rule_fires_when_the_topic_changes(tmp_path, model_cache, monkeypatch):
    monkeypatch.setenv("MEDOPS_MODEL_CACHE", str(model_cache))
    now = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    policy = MonitorPolicy.model_validate(
        {
            "window": "1h",
            "reference": "1d",
            "min_samples": 20,
            "embedding_model": "local:smollm2",
            "rules": [{"metric": "prompt_embedding", "test": "mmd", "max_p": 0.01}],
        }
    )
    steady, changed = Store.open(str(tmp_path / "steady.db")), Store.open(str(tmp_path / "changed.db"))
    reference = exchanges(symptom_prompts(40, seed=1), now - timedelta(hours=20), timedelta(minutes=20))
    for store in (steady, changed):
        insert_exchanges(store, reference)
    insert_exchanges(steady, exchanges(symptom_prompts(30, seed=2), now - timedelta(minutes=50), timedelta(minutes=1)))
    current = billing_prompts(15, seed=3) + symptom_prompts(15, seed=4)  # half the traffic is now about billing
    insert_exchanges(changed, exchanges(current, now - timedelta(minutes=50), timedelta(minutes=1)))

    [quiet] = check(steady, policy, now=now).findings
    [fired] = check(changed, policy, now=now).findings
    assert quiet.status == OK and quiet.p_value >= 0.01, quiet.message
    assert fired.status == FAILED and fired.p_value < 0.01 and fired.value > quiet.value, fired.message
    assert (fired.n_reference, fired.n_current, fired.test) == (40, 30, "mmd")
    assert "mmd of prompt_embedding" in fired.message


def test_an_embedding_rule_needs_an_embedding_model():
    with pytest.raises(ValueError, match="need embedding_model"):
        MonitorPolicy.model_validate({"rules": [{"metric": "prompt_embedding", "max_p": 0.01}]})
    with pytest.raises(ValueError, match="its tests: mmd"):
        MonitorPolicy.model_validate(
            {"embedding_model": "local:smollm2", "rules": [{"metric": "prompt_embedding", "test": "ks", "max_p": 0.01}]}
        )
