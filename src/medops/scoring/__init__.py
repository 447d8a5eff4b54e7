"""Scoring: pure functions from verdicts and answers to numbers (and the answer rule, extract.py). No I/O, no models."""
