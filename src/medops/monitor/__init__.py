"""The deployed model under continuous watch: the recording gateway, online grading, canary
evaluations, drift and alerts (docs/MONITORING.md)."""
