"""Grading: ask a grader model whether each rubric criterion is met, and read its verdict."""
