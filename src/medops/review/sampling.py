"""Which examples of a run go into a review set: ``stratified`` (by theme and language, in
proportion), ``random``, ``disagreement`` (jurors disagree most first) or ``uncertain`` (P(met)
nearest 0.5 first). Pure functions over candidates; ties are broken by the seed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from medops.errors import UserError

STRATEGIES = ("stratified", "random", "disagreement", "uncertain")


@dataclass(frozen=True)
class Candidate:
    key: tuple[int, int]  # (example_index, repeat) in the run
    stratum: tuple[str, str]  # (theme, language)
    jurors: tuple[tuple[bool | None, ...], ...]  # per criterion, each juror's verdict
    p_met: tuple[float | None, ...]  # per criterion, the grader's P(met) where it gave one


def disagreement(candidate: Candidate) -> float | None:
    """Mean over criteria of how split the jurors are: 0 when unanimous, 1 when half say met."""
    splits = []
    for verdicts in candidate.jurors:
        given = [v for v in verdicts if v is not None]
        if len(given) >= 2:
            share = sum(given) / len(given)
            splits.append(1 - abs(2 * share - 1))
    return sum(splits) / len(splits) if splits else None


def uncertainty(candidate: Candidate) -> float | None:
    """How near 0.5 the example's most uncertain criterion is: 1 at P(met) = 0.5, 0 at 0 or 1."""
    given = [p for p in candidate.p_met if p is not None]
    return max(1 - 2 * abs(p - 0.5) for p in given) if given else None


def _stratified(candidates: Sequence[Candidate], n: int, rng: random.Random) -> list[Candidate]:
    """Proportional allocation by largest remainder; within a stratum, a seeded shuffle."""
    strata: dict[tuple[str, str], list[Candidate]] = {}
    for c in candidates:
        strata.setdefault(c.stratum, []).append(c)
    for members in strata.values():
        rng.shuffle(members)
    total = len(candidates)
    quotas = {k: n * len(v) / total for k, v in sorted(strata.items())}
    taken = {k: int(q) for k, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda k: (-(quotas[k] - taken[k]), rng.random()))
    for k in by_remainder[: n - sum(taken.values())]:
        taken[k] += 1
    return [c for k in sorted(strata) for c in strata[k][: taken[k]]]


def choose(candidates: Sequence[Candidate], n: int, strategy: str, seed: int) -> list[Candidate]:
    """``n`` candidates (all of them when there are fewer), in the run's order."""
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}, not '{strategy}'")
    if n < 1:
        raise UserError("--sample must be at least 1")
    rng = random.Random(seed)
    if n >= len(candidates):
        chosen = list(candidates)
    elif strategy == "random":
        chosen = rng.sample(list(candidates), n)
    elif strategy == "stratified":
        chosen = _stratified(candidates, n, rng)
    else:
        measure = disagreement if strategy == "disagreement" else uncertainty
        scored = [(measure(c), c) for c in candidates]
        if all(s is None for s, _ in scored):
            need = "several graders (a jury)" if strategy == "disagreement" else "P(met) (a logprob grader)"
            raise UserError(f"--strategy {strategy} needs a run graded with {need}")
        order = sorted(scored, key=lambda sc: (-(sc[0] if sc[0] is not None else -1.0), rng.random()))
        chosen = [c for _, c in order[:n]]
    return sorted(chosen, key=lambda c: c.key)
