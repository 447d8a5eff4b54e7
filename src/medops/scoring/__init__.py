"""Scoring: pure functions from verdicts to numbers. No I/O, no models."""
