"""Physicians in the loop: review sets sampled from a rubric run, their labels, agreement between
physicians and with the grader, and scores anchored to the physicians (prediction-powered)."""
