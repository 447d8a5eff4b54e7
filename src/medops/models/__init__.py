"""Model access: one async chat interface over every backend (``openai:``, ``local:``, ``hf:``; see backends.py)."""
