"""Operations on recorded runs: paired comparison and release gates."""
