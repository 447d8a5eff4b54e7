"""Embedding drift: do this window's prompts read like the reference window's?

A local model (``local:smollm2`` or ``hf:<directory>``; nothing is downloaded) embeds each
prompt's user text as the mean of its last hidden states over the tokens, L2-normalised. Two
windows are compared by the **maximum mean discrepancy** (MMD; Gretton et al., 2012): the
unbiased MMD² with a Gaussian kernel whose bandwidth is the median distance between all the
embeddings (the median heuristic), and a permutation test (windows' labels shuffled
``PERMUTATIONS`` times, seeded): p = (1 + shuffles with an MMD² at least as large) / (1 +
shuffles). Each window is capped at ``MAX_TEXTS`` prompts (a seeded sample), so a check costs
the same on a busy day. A hidden-state mean of a small chat model is a coarse embedding: it
sees topic, language and register, not fine clinical meaning; a hospital may name a proper
sentence-embedding checkpoint instead (any ``hf:`` directory with a transformers model).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from medops.errors import UserError
from medops.models.spec import parse_model_spec

MAX_TEXTS = 200  # prompts per window
MAX_TOKENS = 256  # of each prompt
PERMUTATIONS = 500
BATCH = 16


class Embedder:
    """Mean-pooled, L2-normalised last hidden states of a local transformers model (loaded once)."""

    def __init__(self, spec: str):
        parsed = parse_model_spec(spec, what="embedding_model")
        if parsed.backend not in ("local", "hf"):
            raise UserError(f"embedding_model {spec!r}: use local:smollm2 or hf:<directory> (a model on this machine)")
        self.spec = spec
        self._parsed = parsed
        self._loaded: tuple | None = None

    def _load(self) -> tuple:
        if self._loaded is None:
            from medops.models.local_hf import require_local_dependencies, smollm2_checkpoint

            require_local_dependencies(f"embedding_model {self.spec}")
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging

            transformers_logging.set_verbosity_error()
            if self._parsed.backend == "local":
                if self._parsed.name != "smollm2":
                    raise UserError(f"embedding_model {self.spec!r}: the only packaged local model is local:smollm2")
                source = str(smollm2_checkpoint())
            else:
                source = self._parsed.name
            try:
                tokenizer = AutoTokenizer.from_pretrained(source)
                model = AutoModel.from_pretrained(source).eval()
            except OSError as exc:
                raise UserError(f"embedding_model {self.spec}: cannot load ({str(exc).splitlines()[0]})") from None
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "right"
            self._loaded = (tokenizer, model)
        return self._loaded

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        tokenizer, model = self._load()
        out = []
        for start in range(0, len(texts), BATCH):
            batch = tokenizer(
                list(texts[start : start + BATCH]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
            )
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled.float(), dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))


def sample(texts: Sequence[str], limit: int = MAX_TEXTS, seed: int = 0) -> list[str]:
    """At most ``limit`` texts, a seeded sample (order kept) when there are more."""
    if len(texts) <= limit:
        return list(texts)
    keep = sorted(random.Random(seed).sample(range(len(texts)), limit))
    return [texts[i] for i in keep]


def _mmd2(kernel: np.ndarray, n: int) -> float:
    """Unbiased MMD² of the first ``n`` rows against the rest, from the joint kernel matrix."""
    m = kernel.shape[0] - n
    xx, yy, xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    return float(
        (xx.sum() - np.trace(xx)) / (n * (n - 1)) + (yy.sum() - np.trace(yy)) / (m * (m - 1)) - 2 * xy.mean()
    )


def mmd_test(
    reference: np.ndarray, current: np.ndarray, *, permutations: int = PERMUTATIONS, seed: int = 0
) -> tuple[float, float]:
    """(unbiased MMD², permutation p-value) of two samples of vectors (rows); see the module doc."""
    n, m = len(reference), len(current)
    if n < 2 or m < 2:
        raise ValueError("MMD needs at least 2 vectors in each window")
    joint = np.concatenate([reference, current]).astype(float)
    squared = np.sum(joint**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * joint @ joint.T, 0.0)
    positive = distances[np.triu_indices(n + m, k=1)]
    positive = positive[positive > 0]
    bandwidth = float(np.median(positive)) if len(positive) else 1.0
    kernel = np.exp(-distances / bandwidth)
    observed = _mmd2(kernel, n)
    rng = np.random.default_rng(seed)
    at_least = 0
    for _ in range(permutations):
        order = rng.permutation(n + m)
        at_least += _mmd2(kernel[np.ix_(order, order)], n) >= observed
    return observed, (1 + at_least) / (1 + permutations)
