"""A tiny vision-language checkpoint with random weights, built from a config: never downloaded.

Idefics3 (SmolVLM's architecture): a 1-layer 32-wide vision tower (images resized to 32 px, 8 px
patches, 4 image tokens after pixel shuffle) and a 2-layer 32-wide Llama, with the packaged SmolLM2
tokenizer; ~13 MB, mostly the embeddings. Random weights answer nonsense: it exercises the
in-process vision path (tests, ``benchmarks/vlm_throughput.py``), never a model's quality.
"""

from __future__ import annotations

from pathlib import Path

# A chat template that renders image parts where they stand (SmolVLM's does the same with more tokens).
TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_vlm(target: Path, tokenizer_dir: Path) -> Path:
    """Save the tiny checkpoint (weights, processor, chat template) into ``target``."""
    import torch
    from transformers import AutoTokenizer, Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3 import Idefics3ImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    images = Idefics3ImageProcessorPil(
        size={"longest_edge": 32}, max_image_size={"longest_edge": 32}, do_image_splitting=False
    )
    processor = Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4, chat_template=TEMPLATE)
    text = {
        "model_type": "llama",
        "vocab_size": len(processor.tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    }
    config = Idefics3Config(
        text_config=text, vision_config=vision, scale_factor=2, image_token_id=processor.image_token_id
    )
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(config).save_pretrained(target)
    processor.save_pretrained(target)
    return target
