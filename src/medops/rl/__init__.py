"""Rule-based RL (the AlphaMed recipe) on TRL: data curation and GRPO training with medops.rewards."""
