"""In-process vision-language models: ``hf:<directory or hub id>`` whose config is image-text-to-text.

The checkpoint loads with transformers' ``AutoProcessor`` and ``AutoModelForImageTextToText``;
requests are micro-batched exactly as text models' are (``local_hf.LocalChatModel``), with
requests that carry images batched apart from text-only ones. Each image part's ``data:`` URI is
decoded in the worker thread and handed to the processor beside the prompt its chat template
renders (``{"type": "image"}`` where the image stood). Generation and choice scoring (the sum of
each option's token log-probabilities after the context, images included) are both supported.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from medops.content import decode_data_uri
from medops.errors import UserError
from medops.models.base import Completion, Messages, SamplingParams
from medops.models.hf_kind import is_vision_checkpoint
from medops.models.local_hf import LocalChatModel, _Request, plan_choices
from medops.models.spec import ModelSpec

if TYPE_CHECKING:
    from medops.models.base import RetryPolicy


class LocalVisionModel(LocalChatModel):
    """A transformers image-text-to-text model with its processor, served to the async pipeline."""

    def _from_pretrained(self, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(self._source, **kwargs)
        if getattr(processor, "image_processor", None) is None:
            raise UserError(f"{self.label}: the checkpoint's processor has no image processor")
        return processor, AutoModelForImageTextToText.from_pretrained(self._source, dtype=self._dtype, **kwargs)

    def _tokenizer(self) -> Any:
        return (self._loaded or self._load())[0].tokenizer

    def _request_messages(self, messages: Messages) -> Messages:
        """Every content as parts (vision chat templates iterate them); an image part becomes
        ``{"type": "image", "url": <data: URI>}``. Anything else that is not text is refused."""
        out: Messages = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, str) or content is None:
                parts = [{"type": "text", "text": content or ""}]
            else:
                parts = []
                for part in content:
                    if part.get("type") == "text":
                        parts.append({"type": "text", "text": part["text"]})
                    elif part.get("type") == "image_url" and str(part["image_url"].get("url", "")).startswith("data:"):
                        parts.append({"type": "image", "url": part["image_url"]["url"]})
                    else:
                        raise UserError(
                            f"{self.label} takes text and images as data: URIs; the request holds a "
                            f"{part.get('type')} part it cannot read"
                        )
            out.append({**message, "content": parts})  # type: ignore[typeddict-item]
        return out

    # the worker thread -------------------------------------------------------------------
    def _prompt(self, processor: Any, messages: Messages, params: SamplingParams) -> str:
        template_messages = [
            {**m, "content": [{"type": "image"} if p["type"] == "image" else p for p in m["content"]]} for m in messages
        ]
        text = processor.apply_chat_template(template_messages, add_generation_prompt=True, tokenize=False)
        return text + (params.assistant_prefix or "")

    def _inputs(self, texts: list[str], images: list[list[Any]]) -> Any:
        """The processor's tensors for a batch (left-padded), floats in the model's dtype."""
        processor, model = self._load()
        encoded = processor(
            text=texts,
            images=images if any(images) else None,
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        return encoded.to(model.device).to(self._dtype)

    def _encode(self, conversations: list[Messages], params: SamplingParams) -> Any:
        processor, _ = self._load()
        return self._inputs([self._prompt(processor, m, params) for m in conversations], _images(conversations))

    def _score(self, batch: list[_Request]) -> list[Completion]:
        """Each choice's summed token log-probability after the context, images included: one
        pass over the contexts when every choice is a single token, else one sequence per choice.

        A choice's tokens are found on the text (images stand as one placeholder there); in the
        processed sequence they are the last tokens of the left-padded row, which is checked."""
        import torch

        processor, model = self._load()
        tokenizer = self._tokenizer()
        conversations = [r.messages for r in batch]
        images = _images(conversations)
        contexts, plans = [], []
        for request in batch:
            context = self._prompt(processor, request.messages, request.params)
            context_ids, planned = plan_choices(tokenizer, context, request.params.score_choices or ())
            plan = {c: (start == len(context_ids), full[start:]) for c, (start, full) in planned.items()}
            contexts.append(context)
            plans.append(plan)
        if all(appended and len(tokens) == 1 for plan in plans for appended, tokens in plan.values()):
            encoded = self._inputs(contexts, images)
            with torch.inference_mode():
                logits = model(**encoded, logits_to_keep=1).logits[:, -1, :]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            scores = [{c: float(logprobs[row, t[0]]) for c, (_, t) in plan.items()} for row, plan in enumerate(plans)]
            lengths = [int(n) for n in encoded["attention_mask"].sum(dim=1)]
        else:
            sequences = [
                (row, choice, tokens) for row, plan in enumerate(plans) for choice, (_, tokens) in plan.items()
            ]
            encoded = self._inputs(
                [contexts[row] + choice for row, choice, _ in sequences], [images[row] for row, _, _ in sequences]
            )
            span = max(len(tokens) for _, _, tokens in sequences) + 1
            with torch.inference_mode():
                kept = model(**encoded, logits_to_keep=span).logits
            logprobs = torch.log_softmax(kept.float(), dim=-1)
            ids = encoded["input_ids"]
            scores = [{} for _ in batch]
            lengths = [0] * len(batch)
            for index, (row, choice, tokens) in enumerate(sequences):
                n = len(tokens)
                if ids[index, -n:].tolist() != tokens:
                    raise RuntimeError(f"{self.label}: the processor tokenized choice {choice!r} differently")
                # kept position span - n - 1 + t predicts the choice's token t
                scores[row][choice] = sum(float(logprobs[index, span - n - 1 + t, tok]) for t, tok in enumerate(tokens))
                lengths[row] = int(encoded["attention_mask"][index].sum()) - n
        return [
            Completion(text="", finish_reason="scored", calls=1, prompt_tokens=n, extra={"choice_logprobs": score})
            for n, score in zip(lengths, scores, strict=True)
        ]


def _images(conversations: list[Messages]) -> list[list[Any]]:
    """Each conversation's images, in order, decoded to RGB PIL images."""
    from PIL import Image

    out = []
    for messages in conversations:
        found = []
        for message in messages:
            for part in message["content"]:  # type: ignore[union-attr]
                if part["type"] == "image":
                    decoded = decode_data_uri(part["url"])  # type: ignore[typeddict-item]
                    if decoded is None:
                        raise UserError("an image part's data: URI is not base64")
                    found.append(Image.open(io.BytesIO(decoded[1])).convert("RGB"))
        out.append(found)
    return out


def create(spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy, batch_size: int) -> LocalChatModel:
    """The ``hf`` backend: a vision-language checkpoint runs as ``LocalVisionModel``, any other as
    a text model; both micro-batched in process (``batch_size`` bounds the work)."""
    vision = is_vision_checkpoint(spec.name, spec.options.get("revision"))
    return (LocalVisionModel if vision else LocalChatModel)(spec, role=role, batch_size=batch_size)


__all__ = ["LocalVisionModel", "create"]
