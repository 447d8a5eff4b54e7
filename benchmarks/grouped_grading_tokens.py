"""Grader input tokens per example: one criterion per call (K=1) vs the whole rubric in one call.

Renders the real grader prompts for the shared HealthBench sample (each example's ideal
completion, or a fixed reply where there is none) and counts tokens with the SmolLM2
tokenizer. Skips when ../shared/data is absent.

    python benchmarks/grouped_grading_tokens.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from medops.datasets.healthbench import load_rubric_dataset
from medops.grading.templates import (
    default_group_template,
    default_template,
    render_conversation,
    render_grader_prompt,
    render_group_prompt,
)
from medops.models.local_hf import smollm2_checkpoint

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "healthbench" / "oss_eval_sample_500.jsonl"
FALLBACK_REPLY = "Thanks for your question. " * 40


def main() -> None:
    if not SAMPLE.exists():
        sys.exit(f"skipped: {SAMPLE} not found")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_checkpoint())
    single_template, group_template = default_template(), default_group_template()
    k1, k_all, criteria = [], [], 0
    for example in load_rubric_dataset(SAMPLE).examples:
        reply = example.ideal_completion or FALLBACK_REPLY
        turns = [{"role": m.role, "content": m.content} for m in example.prompt]
        conversation = render_conversation([*turns, {"role": "assistant", "content": reply}])
        items = [item.render() for item in example.rubrics]
        criteria += len(items)
        k1.append(
            sum(len(tokenizer(render_grader_prompt(single_template, conversation, i))["input_ids"]) for i in items)
        )
        numbered = [(n + 1, i) for n, i in enumerate(items)]
        k_all.append(len(tokenizer(render_group_prompt(group_template, conversation, numbered))["input_ids"]))
    n = len(k1)
    print(
        json.dumps(
            {
                "examples": n,
                "criteria_per_example": round(criteria / n, 2),
                "grader_input_tokens_per_example_k1": round(sum(k1) / n),
                "calls_per_example_k1": round(criteria / n, 2),
                "grader_input_tokens_per_example_k_all": round(sum(k_all) / n),
                "calls_per_example_k_all": 1,
                "reduction": round(sum(k1) / sum(k_all), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
