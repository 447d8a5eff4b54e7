"""Model access: one async chat interface over every backend (``openai:``, later ``local:``/``hf:``)."""
