"""The PHI policy for image parts, at the call boundary (the guard) and in the gateway recorder."""

from __future__ import annotations

import json

import pytest

from medops.content import data_uri
from medops.events import BeforeCall
from medops.models.base import SamplingParams
from medops.monitor.recorder import apply_phi
from medops.privacy import missing_components
from medops.privacy.files import redact_file, scan_file
from medops.privacy.guard import IMAGES_ENV, PhiGuard

pytestmark = pytest.mark.skipif(missing_components() is not None, reason="PHI detection not installed")

EXTERNAL = {"endpoint": "https://api.openai.example/v1", "model": "gpt-4.1"}
IMAGE = {"type": "image_url", "image_url": {"url": data_uri(b"\x89PNG\r\n\x1a\nxx", "image/png")}}


def call(text: str = "Patient John Smith, MRN: 88120034, has this rash.") -> BeforeCall:
    content = [{"type": "text", "text": text}, IMAGE]
    return BeforeCall(
        None, "model", "openai:gpt-4.1", EXTERNAL, [{"role": "user", "content": content}], SamplingParams()
    )


@pytest.fixture(autouse=True)
def site(monkeypatch):
    monkeypatch.delenv(IMAGES_ENV, raising=False)
    monkeypatch.delenv("MEDOPS_PHI_POLICY", raising=False)
    monkeypatch.delenv("MEDOPS_INTERNAL_HOSTS", raising=False)


def test_block_refuses_an_image_part():
    event = call("A rash.")  # no PHI in the text: the image alone is refused
    PhiGuard("block").before_call(event)
    assert event.refused and "image part" in event.refused and "block" in event.refused


def test_redact_refuses_images_by_default_naming_the_setting():
    event = call()
    PhiGuard("redact").before_call(event)  # also the default for an external endpoint
    assert event.refused is not None and f"{IMAGES_ENV}=allow" in event.refused
    default = call()
    PhiGuard().before_call(default)
    assert default.refused is not None and IMAGES_ENV in default.refused


def test_redact_sends_images_where_the_site_allows_and_redacts_the_text_parts(monkeypatch):
    monkeypatch.setenv(IMAGES_ENV, "allow")
    event = call()
    PhiGuard("redact").before_call(event)
    assert event.refused is None
    text, image = event.messages[0]["content"]
    assert "John Smith" not in text["text"] and "88120034" not in text["text"] and "rash" in text["text"]
    assert image == IMAGE
    assert event.notes["phi"]["images"] == 1 and event.notes["phi"]["entities"]


def test_allow_sends_the_image_and_the_text_as_they_are():
    event = call()
    PhiGuard("allow").before_call(event)
    assert event.refused is None and event.messages[0]["content"][1] == IMAGE
    assert "John Smith" in event.messages[0]["content"][0]["text"]


def test_a_misspelt_setting_is_refused(monkeypatch):
    from medops.errors import UserError

    monkeypatch.setenv(IMAGES_ENV, "yes")
    with pytest.raises(UserError, match=IMAGES_ENV):
        PhiGuard("redact")


def test_the_recorder_redacts_text_parts_and_omits_images_under_redact():
    row = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Patient John Smith has a rash."}, IMAGE]}],
        "response": "John Smith should see a dermatologist.",
    }
    counts = apply_phi(row, "redact")
    text, image = row["messages"][0]["content"]
    assert "John Smith" not in text["text"] and "rash" in text["text"]
    assert image == {"type": "image_url", "omitted": True}
    assert "John Smith" not in row["response"] and counts


def test_the_guard_redacts_names_tool_arguments_and_tool_results_before_a_call():
    messages = [
        {"role": "user", "name": "John_Smith", "content": "Patient John Smith has a fever."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c0", "type": "function", "function": {"name": "lookup", "arguments": '{"mrn": "88120034"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c0", "content": "John Smith, phone 010-1234-5678"},
    ]
    event = BeforeCall(None, "model", "openai:gpt-4.1", EXTERNAL, messages, SamplingParams())
    PhiGuard("redact").before_call(event)
    sent = json.dumps(event.messages, ensure_ascii=False)
    assert event.refused is None
    for value in ("John", "88120034", "010-1234-5678"):
        assert value not in sent, value
    assert event.messages[2]["tool_call_id"] == "c0" and "fever" in sent


def test_phi_redact_of_a_file_keeps_image_parts_and_redacts_tool_arguments(tmp_path):
    row = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Patient John Smith has this rash."}, IMAGE]},
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"mrn": "88120034"}'}}]},
        ]
    }
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(row) + "\n")
    redact_file(src, tmp_path / "out.jsonl")
    out = json.loads((tmp_path / "out.jsonl").read_text())
    assert out["messages"][0]["content"][1] == IMAGE  # never read as text, never corrupted
    assert "John Smith" not in out["messages"][0]["content"][0]["text"]
    assert "88120034" not in out["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert not any(f["field"].endswith("url") for f in scan_file(src)["findings"])
