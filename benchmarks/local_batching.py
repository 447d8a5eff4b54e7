"""Batched vs one-at-a-time generation with the packaged SmolLM2 (a benchmark, not a test).

Same prompts, greedy decoding, same outputs (checked); reports generated tokens per second.

    python benchmarks/local_batching.py --prompts 16 --max-new-tokens 64 --batch-size 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from medops.models.base import SamplingParams
from medops.models.local_hf import LocalChatModel
from medops.models.spec import parse_model_spec

QUESTIONS = [
    "What is a fever?",
    "How do I treat a small burn?",
    "When should I worry about a headache?",
    "What does high blood pressure mean?",
    "Is it safe to take ibuprofen with food?",
    "What causes a cough?",
    "How much water should I drink a day?",
    "What are the signs of dehydration in children?",
    "How do vaccines work?",
    "What is type 2 diabetes?",
    "How can I sleep better?",
    "What is an allergy?",
    "How do I know if a cut needs stitches?",
    "What is cholesterol?",
    "Why do muscles cramp?",
    "What is the flu?",
]


async def timed(model: LocalChatModel, prompts, params, concurrent: bool):
    started = time.perf_counter()
    if concurrent:
        results = await asyncio.gather(*(model.complete(p, params) for p in prompts))
    else:
        results = [await model.complete(p, params) for p in prompts]
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    prompts = [[{"role": "user", "content": q}] for q in (QUESTIONS * 4)[: args.prompts]]
    params = SamplingParams(max_tokens=args.max_new_tokens)
    model = LocalChatModel(parse_model_spec("local:smollm2"), role="model", batch_size=args.batch_size)

    async def run():
        await model.complete(prompts[0], SamplingParams(max_tokens=2))  # load and warm up
        single_s, single = await timed(model, prompts, params, concurrent=False)
        batched_s, batched = await timed(model, prompts, params, concurrent=True)
        return single_s, single, batched_s, batched

    single_s, single, batched_s, batched = asyncio.run(run())
    tokens = sum(c.completion_tokens for c in single)
    same = sum(a.text == b.text for a, b in zip(single, batched, strict=True))
    print(
        json.dumps(
            {
                "prompts": len(prompts),
                "max_new_tokens": args.max_new_tokens,
                "batch_size": args.batch_size,
                "generated_tokens": tokens,
                "identical_outputs": f"{same}/{len(prompts)}",
                "one_at_a_time_tokens_per_s": round(tokens / single_s, 1),
                "batched_tokens_per_s": round(sum(c.completion_tokens for c in batched) / batched_s, 1),
                "speedup": round(single_s / batched_s, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
