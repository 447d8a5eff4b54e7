"""Datasets: read benchmark files into validated, immutable examples."""
