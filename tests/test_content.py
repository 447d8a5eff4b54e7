"""medops.content: the one text view, the one walker, image digests in stores and cache keys."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import text

from medops.content import (
    IMAGE_CHARS_ESTIMATE,
    data_uri,
    estimated_chars,
    keyed,
    map_message,
    map_strings,
    text_of,
)
from medops.errors import UserError
from medops.models.base import SamplingParams
from medops.models.cache import request_key
from medops.models.local_hf import _to_text
from medops.store import queries
from medops.store.repository import Store

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels"
OTHER = b"\x89PNG\r\n\x1a\n" + b"other pixels"


def parts(image: bytes = PNG, text: str = "What is this?") -> list[dict]:
    return [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": data_uri(image, "image/png")}}]


def test_text_of_is_the_string_or_the_text_parts_joined():
    assert text_of("plain") == "plain"
    assert text_of([{"type": "text", "text": "a"}, *parts(text="b")]) == "a\nb"
    assert text_of(None) == ""


def test_the_walker_maps_text_parts_names_and_tool_arguments_and_leaves_images():
    message = {
        "role": "user",
        "name": "kim",
        "content": parts(text="Kim has a rash"),
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"who": "Kim"}'}}],
    }
    out = map_message(message, str.upper)
    assert out["content"][0] == {"type": "text", "text": "KIM HAS A RASH"}
    assert out["content"][1] == message["content"][1]  # the image is not text
    assert out["name"] == "KIM" and out["role"] == "user"
    assert out["tool_calls"][0]["function"]["arguments"] == '{"who": "KIM"}'  # keys are structure
    assert out["tool_calls"][0]["id"] == "c1"
    assert map_message(message, str.upper, lambda p: {"type": p["type"], "omitted": True})["content"][1] == {
        "type": "image_url",
        "omitted": True,
    }


def test_a_data_file_walk_never_reads_base64_as_text():
    row = {"id": "x", "messages": [{"role": "user", "content": parts()}]}
    seen = []
    map_strings(row, lambda s: seen.append(s) or s)
    assert not any("base64" in s for s in seen) and "What is this?" in seen


def test_keyed_replaces_image_bytes_by_their_digest_and_leaves_text_alone():
    blobs: dict = {}
    messages = [{"role": "user", "content": parts()}]
    out = keyed(messages, blobs)
    digest = hashlib.sha256(PNG).hexdigest()
    assert out[0]["content"][1]["image_url"]["url"] == f"sha256:{digest}"
    assert blobs == {digest: ("image/png", PNG)}
    text_only = [{"role": "user", "content": "hello"}]
    assert keyed(text_only) == text_only


def test_cache_keys_use_the_image_digest_and_text_keys_stay_as_they_were():
    identity, params = {"endpoint": "http://x", "model": "m"}, SamplingParams(temperature=0.0)
    text_only = [{"role": "user", "content": "hello"}]
    # the key of a text-only request, by the formula used before content parts existed
    before = json.dumps(
        [identity, params.identity(), text_only, 0], ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )
    assert request_key(identity, text_only, params) == hashlib.sha256(before.encode()).hexdigest()
    with_image = [{"role": "user", "content": parts()}]
    by_digest = [{"role": "user", "content": keyed(parts())}]
    assert request_key(identity, with_image, params) == request_key(identity, by_digest, params)
    assert request_key(identity, with_image, params) != request_key(
        identity, [{"role": "user", "content": parts(OTHER)}], params
    )


def test_budgets_count_an_image_as_a_fixed_estimate_not_its_base64_length():
    assert estimated_chars([{"role": "user", "content": "abcd"}]) == 4
    assert estimated_chars([{"role": "user", "content": parts(text="abcd")}]) == 4 + IMAGE_CHARS_ESTIMATE
    assert (
        estimated_chars([{"role": "user", "content": parts(image=PNG * 10_000, text="abcd")}])
        == 4 + IMAGE_CHARS_ESTIMATE
    )


def test_the_in_process_backend_refuses_images_and_never_drops_them():
    with pytest.raises(UserError, match=r"text only.*1 image_url part"):
        _to_text("local:smollm2", [{"role": "user", "content": parts()}])
    only_text = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert _to_text("local:smollm2", only_text) == [{"role": "user", "content": "a\nb"}]


def test_the_store_keeps_an_image_once_across_items_and_gives_it_back(tmp_path):
    store = Store.open(str(tmp_path / "s.db"))
    records = [{"prompt": [{"role": "user", "content": parts(text=f"item {i}")}]} for i in range(2)]
    records.append({"prompt": [{"role": "user", "content": parts(OTHER)}]})
    sha = store.save_item_set("healthbench", {}, records)
    store.save_item_set("healthbench", {}, records[:2])  # another set, the same images
    with store.session() as s:
        rows = s.execute(text("SELECT sha256, size_bytes FROM blobs ORDER BY size_bytes")).all()
        items = [r[0] for r in s.execute(text("SELECT content FROM items")).all()]
    assert sorted(rows) == sorted(
        [(hashlib.sha256(PNG).hexdigest(), len(PNG)), (hashlib.sha256(OTHER).hexdigest(), len(OTHER))]
    )
    assert not any("base64" in str(item) for item in items)
    _, _, back = queries.item_set(store, sha)
    assert back == records
    _, _, by_digest = queries.item_set(store, sha, images=False)
    assert by_digest[0]["prompt"][0]["content"][1]["image_url"]["url"] == f"sha256:{hashlib.sha256(PNG).hexdigest()}"
    assert queries.blob(store, hashlib.sha256(PNG).hexdigest()) == ("image/png", PNG)


def test_tool_call_arguments_are_read_with_their_keys_and_left_alone_when_nothing_changes():
    def fn(text: str) -> str:
        return text.replace("mrn: 123", "mrn: [MRN_1]")

    call = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"mrn": "123"}'}}]}
    assert json.loads(map_message(call, fn)["tool_calls"][0]["function"]["arguments"]) == {"mrn": "[MRN_1]"}
    compact = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"x":"1"}'}}]}
    assert map_message(compact, fn) == compact  # byte for byte: the cache key and the request stay
    row = {"messages": [call]}
    assert "[MRN_1]" in map_strings(row, fn)["messages"][0]["tool_calls"][0]["function"]["arguments"]


def test_a_message_name_is_read_as_words_and_stays_a_valid_name():
    out = map_message(
        {"role": "user", "name": "John_Smith", "content": "hi"}, lambda t: t.replace("John Smith", "[PERSON_1]")
    )
    assert out["name"] == "PERSON_1"
    assert map_message({"role": "user", "name": "triage_bot"}, str)["name"] == "triage_bot"
