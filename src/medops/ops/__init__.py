"""Operations on recorded runs: paired comparison, release gates, cost."""
