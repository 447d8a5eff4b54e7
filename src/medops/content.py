"""Message content: text, or a list of parts in the OpenAI chat format. Imports nothing of medops.

A message's ``content`` is a string (plain text stays plain) or a list of parts::

    {"type": "text", "text": "..."}
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}

In memory and on the wire an image is a ``data:`` URI; in the store, in cache keys, exports and
the dashboard it is ``sha256:<hex>``, the digest of its bytes (``keyed``), and the bytes are kept
once by that digest. ``text_of`` is the one text view (grader prompts, drift, routing, online
grading); ``map_message`` is the one walker over every string a message carries (content parts,
``name``, tool-call arguments), which the PHI guard, the gateway recorder and the file commands
all use. Callers never walk parts themselves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field
from typing_extensions import NotRequired, TypedDict

_STRICT = ConfigDict(extra="forbid")  # a key of a part that nothing reads is refused, not ignored


class TextPart(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    type: Literal["text"]
    text: str


class ImageUrl(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    url: Annotated[str, Field(min_length=1)]
    detail: NotRequired[Literal["auto", "low", "high"]]


class ImagePart(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    type: Literal["image_url"]
    image_url: ImageUrl


Part = Annotated[TextPart | ImagePart, Field(discriminator="type")]
Content = str | list[Part]

DIGEST_PREFIX = "sha256:"
# What a token budget charges for one image before the endpoint counts it (OpenAI bills a
# 512x512 tile at 170 tokens plus 85 base; a "high" detail photo is a few tiles): in characters,
# at the budget's four characters per token, about 1000 tokens.
IMAGE_CHARS_ESTIMATE = 4000

_DATA_URI = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)", re.DOTALL)


def text_of(content: Any) -> str:
    """The content's text: a string as it is; parts' texts joined with newlines (images left out)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if _is_text(p))
    return ""


def _is_text(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)


def non_text_parts(content: Any) -> list[dict[str, Any]]:
    """The parts that are not text (images, and any other kind an OpenAI request may carry)."""
    if not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and not _is_text(p)]


def map_text(content: Any, fn: Callable[[str], str], image: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """``content`` with ``fn`` applied to its text (the string, or each text part); a non-text
    part goes through ``image`` when given (its return value replaces the part), else is kept."""
    if isinstance(content, str):
        return fn(content) if content else content
    if isinstance(content, list):
        out = []
        for part in content:
            if _is_text(part):
                out.append({**part, "text": fn(part["text"])})
            elif isinstance(part, dict) and image is not None:
                out.append(image(part))
            else:
                out.append(part)
        return out
    return content


def map_message(message: Any, fn: Callable[[str], str], image: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """One message with ``fn`` applied to every string it carries that may hold patient data: its
    content, ``name``, and each tool call's name and arguments (``role`` and ids are structure)."""
    if not isinstance(message, dict):
        return message
    out = dict(message)
    if "content" in out:
        out["content"] = map_text(out["content"], fn, image)
    if isinstance(out.get("name"), str) and out["name"]:
        out["name"] = _map_name(out["name"], fn)
    if isinstance(out.get("tool_calls"), list):
        out["tool_calls"] = [_map_tool_call(call, fn) for call in out["tool_calls"]]
    if isinstance(out.get("function_call"), dict):
        out["function_call"] = _map_function(out["function_call"], fn)
    return out


def _map_tool_call(call: Any, fn: Callable[[str], str]) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    return {**call, "function": _map_function(call["function"], fn)}


def _map_function(function: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    out = dict(function)
    if isinstance(out.get("name"), str) and out["name"]:
        out["name"] = _map_name(out["name"], fn)
    if isinstance(out.get("arguments"), str) and out["arguments"]:
        out["arguments"] = _map_arguments(out["arguments"], fn)
    return out


def _map_name(name: str, fn: Callable[[str], str]) -> str:
    """A message's or function's name (``John_Smith``): read with its separators as spaces; what
    ``fn`` replaces comes back as a valid name (``[PERSON_1]`` -> ``PERSON_1``)."""
    spaced = re.sub(r"[_-]+", " ", name)
    out = fn(spaced)
    return name if out == spaced else re.sub(r"[^A-Za-z0-9_-]+", "_", out).strip("_")


def _map_arguments(arguments: str, fn: Callable[[str], str]) -> str:
    """Tool-call arguments: a JSON value's strings each read with its key as context (``mrn:
    88120034``, so identifiers that only their key names are found); other text as it is. Left
    byte for byte as given when nothing changes."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return fn(arguments)
    if not isinstance(value, dict | list):
        return fn(arguments)
    mapped = _map_keyed(value, fn, None)
    return arguments if mapped == value else json.dumps(mapped, ensure_ascii=False)


def _map_keyed(value: Any, fn: Callable[[str], str], key: str | None) -> Any:
    if isinstance(value, str):
        if key is None or not value:
            return fn(value) if value else value
        prefix = f"{key}: "
        out = fn(prefix + value)
        return out[len(prefix) :] if out.startswith(prefix) else fn(value)
    if isinstance(value, dict):
        return {k: _map_keyed(v, fn, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_keyed(v, fn, key) for v in value]
    return value


NON_TEXT_TYPES = frozenset({"image_url", "input_audio", "file", "image", "audio"})


def is_non_text_part(value: Any) -> bool:
    """A content part whose payload is not text (an image, audio, a file): never fed to a detector."""
    return isinstance(value, dict) and value.get("type") in NON_TEXT_TYPES


def map_strings(value: Any, fn: Callable[[str], str], image: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """Every string in any JSON value (a data file's row) through ``fn``; a non-text part goes
    through ``image`` (kept when None), so base64 payloads are never read as text. Tool-call
    ``arguments`` are read as ``map_message`` reads them (each value with its key as context)."""
    return _map_strings(value, fn, image, None)


def _map_strings(value: Any, fn: Callable[[str], str], image: Any, key: str | None) -> Any:
    if isinstance(value, str):
        if key == "arguments" and value:
            return _map_arguments(value, fn)
        return fn(value)
    if is_non_text_part(value):
        return image(value) if image is not None else value
    if isinstance(value, dict):
        return {k: _map_strings(v, fn, image, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn, image, None) for v in value]
    return value


def iter_strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(path, string) for every string ``map_strings`` would map, e.g. ``messages[0].content``."""
    if isinstance(value, str):
        yield where, value
    elif is_non_text_part(value):
        return
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from iter_strings(item, f"{where}[{i}]")


def map_messages(
    messages: Iterable[Any], fn: Callable[[str], str], image: Callable[[dict[str, Any]], Any] | None = None
) -> list[Any]:
    return [map_message(m, fn, image) for m in messages]


def image_parts(messages: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Every non-text part in ``messages`` (images first of all)."""
    for message in messages:
        if isinstance(message, dict):
            yield from non_text_parts(message.get("content"))


def has_images(messages: Iterable[Any]) -> bool:
    return next(image_parts(messages), None) is not None


# images: data URIs and digests -----------------------------------------------------------------
def data_uri(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_uri(url: str) -> tuple[str, bytes] | None:
    """(media type, bytes) of a base64 ``data:`` URI, or None when ``url`` is not one."""
    match = _DATA_URI.fullmatch(url)
    if match is None:
        return None
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        return None
    return match["media"] or "application/octet-stream", data


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keyed(value: Any, blobs: dict[str, tuple[str, bytes]] | None = None) -> Any:
    """``value`` (messages, a message, an item record: any JSON) with each image's ``data:`` URI
    replaced by ``sha256:<hex>`` of its bytes; what stores, cache keys and exports carry. The
    bytes are collected into ``blobs`` (digest -> (media type, bytes)) when given. A value
    without images comes back equal, so text-only keys and hashes stay as they were."""
    if isinstance(value, list):
        return [keyed(v, blobs) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("type") == "image_url" and isinstance(value.get("image_url"), dict):
        url = value["image_url"].get("url")
        decoded = decode_data_uri(url) if isinstance(url, str) else None
        if decoded is None:
            return value
        sha = digest(decoded[1])
        if blobs is not None:
            blobs[sha] = decoded
        return {**value, "image_url": {**value["image_url"], "url": DIGEST_PREFIX + sha}}
    return {k: keyed(v, blobs) for k, v in value.items()}


def digests(value: Any) -> list[str]:
    """The image digests a keyed value refers to, in order of appearance."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for item in v:
                walk(item)
        elif isinstance(v, dict):
            url = v.get("image_url", {}).get("url") if v.get("type") == "image_url" else None
            if isinstance(url, str) and url.startswith(DIGEST_PREFIX):
                found.append(url[len(DIGEST_PREFIX) :])
            elif isinstance(url, str) and (decoded := decode_data_uri(url)) is not None:
                found.append(digest(decoded[1]))
            else:
                for item in v.values():
                    walk(item)

    walk(value)
    return found


def unkeyed(value: Any, blob: Callable[[str], tuple[str, bytes]]) -> Any:
    """The inverse of ``keyed``: each ``sha256:`` image url back to its ``data:`` URI, the bytes
    read with ``blob(digest)``."""
    if isinstance(value, list):
        return [unkeyed(v, blob) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("type") == "image_url" and isinstance(value.get("image_url"), dict):
        url = value["image_url"].get("url")
        if isinstance(url, str) and url.startswith(DIGEST_PREFIX):
            media_type, data = blob(url[len(DIGEST_PREFIX) :])
            return {**value, "image_url": {**value["image_url"], "url": data_uri(data, media_type)}}
        return value
    return {k: unkeyed(v, blob) for k, v in value.items()}


def estimated_chars(messages: Iterable[Any]) -> int:
    """A request's size for budgets, in characters: its text, plus ``IMAGE_CHARS_ESTIMATE`` per
    image (never the length of a base64 string or of a list of parts)."""
    total = 0
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            total += len(text_of(content)) + IMAGE_CHARS_ESTIMATE * len(non_text_parts(content))
    return total
