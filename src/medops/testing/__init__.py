"""Test support that ships with medops: a scriptable OpenAI-compatible server for offline checks."""
