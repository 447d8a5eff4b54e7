"""Equity: counterfactual variants of items (rule-based, per language) and their paired statistics."""
