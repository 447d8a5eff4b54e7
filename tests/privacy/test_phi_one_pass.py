"""The detector's fast paths give what the plain ones give: the one pass over the digits (``OnePass``)
what each rule's own scan finds, and the recorder's memo what ``detect`` computes."""

from __future__ import annotations

import random

import phi_corpus
import pytest
from phi_generated import PARTS, corpus

pytest.importorskip("presidio_analyzer")

from medops.monitor.recorder import apply_phi
from medops.privacy import Redactor, detect
from medops.privacy.engine import DetectionMemo, normalise
from medops.privacy.recognizers import build_recognizers, scanner


def _texts() -> list[str]:
    texts = [d.text for d in phi_corpus.documents()] + list(phi_corpus.CLEAN)
    texts += [doc.text for part in PARTS for doc in corpus(part)]  # every spelling the held-out parts found
    rng = random.Random(3)
    cut = []
    for _ in range(400):  # cut anywhere: rules that match at a text's edges
        text = rng.choice(texts)
        start = rng.randrange(len(text))
        cut.append(text[start : start + rng.randint(1, 300)])
    return texts + cut + ["+1 (212) 555-0142", "(02)123-4567", "tel 010-1234-5678", "Mr.Kim 94 y/o"]


def test_one_pass_finds_what_each_rule_finds():
    recognizers = build_recognizers()
    scan = scanner(recognizers)
    for text in _texts():
        normal = normalise(text)[0]
        assert scan(normal) == [c for r in recognizers for c in r.find(normal)], text


def test_memo_gives_what_detect_gives_and_answers_repeats():
    memo = DetectionMemo()
    names = ["김민수", "John Smith"]
    texts = [d.text for d in phi_corpus.documents()]
    first = [memo.detect(t, names) for t in texts]
    assert memo.hits == 0
    again = [memo.detect(t, reversed(names)) for t in texts]  # the names as a set: their order is no key
    assert first == again == [detect(t, known_names=names) for t in texts]
    assert memo.hits == len(texts)
    assert memo.detect(texts[0], ["Other Name"]) == detect(texts[0], known_names=["Other Name"])


def test_memo_keeps_at_most_its_characters():
    memo = DetectionMemo(max_chars=1000)
    for d in phi_corpus.documents():
        memo.detect(d.text)
    assert 0 < memo.chars <= 1000


def test_recorded_chat_resending_the_conversation_is_redacted_as_without_memo():
    from medops.monitor import recorder

    docs = [d.text for d in phi_corpus.documents()][:6]
    exchanges = []
    for turn in range(1, 4):  # each turn resends every message before it
        messages = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(docs[: 2 * turn - 1])
        ]
        exchanges.append({"messages": messages, "response": docs[2 * turn - 1]})
    for row in exchanges:
        plain = Redactor()
        expected = [{**m, "content": plain.redact(m["content"])} for m in row["messages"]]
        expected_response = plain.redact(row["response"])
        recorded = {**row, "messages": [dict(m) for m in row["messages"]]}
        apply_phi(recorded, "redact")
        assert recorded["messages"] == expected and recorded["response"] == expected_response
        assert recorded["notes"]["phi"]["entities"] == {k: n for k, n in sorted(plain.counts.items()) if n}
    assert recorder._memo.hits >= 3  # the resent messages: detected once
