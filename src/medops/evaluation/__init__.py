"""Evaluation pipelines: wire datasets, models, grading, scoring and the store into runs."""
