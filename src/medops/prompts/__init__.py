"""Prompts: how exam items are put to a model (styles, languages, few-shot, user templates)."""
