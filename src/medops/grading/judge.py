"""The judge seam: who says whether a rubric criterion is met, and how several say it together.

A :class:`CriterionJudge` takes a conversation and a criterion and gives a :class:`Verdict`: met,
not met, or ungraded with a reason (never guessed), optionally P(met), and an explanation. It
makes its calls through the :data:`CallFn` the pipeline hands it, so caching, counting, budgets
and the PHI guard stay in the engine. A judge is a named value: its ``name`` is stored with every
verdict it gives and its ``identity()`` with the run (settings, never code), so ``--resume``
rebuilds the same judge and refuses a different one.

A run may have several judges (a jury). Each judge's verdict is stored on its own; one
aggregation step, :func:`aggregate` with a named reducer, turns them into the criterion's
verdict whenever it is read. With one judge the aggregate is that judge's verdict, unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from medops.models.base import ChatModel, Completion, Messages, SamplingParams

# (messages, params, use_cache, keep) -> Completion; the pipeline's call adds caching and counting.
CallFn = Callable[[Messages, SamplingParams, bool, Callable[[Completion], bool] | None], Awaitable[Completion]]


@dataclass(frozen=True)
class Criterion:
    """A rubric criterion as a judge sees it."""

    index: int  # its position in the example's rubric (grouped prompts number it index + 1)
    text: str  # as shown to the grader: "[5] criterion" (HealthBench) or the bare criterion (meta-eval)


def _no_usage() -> dict[str, float]:
    return {"calls": 0, "rejected": 0, "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0}


@dataclass
class Verdict:
    """One judge's word on one criterion, with what it cost to get."""

    judge: str  # the name of the judge that gave it ("text:openai:gpt-4.1", "jury:majority")
    criterion_index: int
    met: bool | None  # None: ungraded, and ``reason`` says why
    p_met: float | None = None
    explanation: str | None = None
    reason: str | None = None
    raw_reply: str | None = None
    attempts: int = 0
    cached: bool = False
    notes: dict[str, Any] = field(default_factory=dict)  # before-call notes of its last call (PHI policy)
    usage: dict[str, float] = field(default_factory=_no_usage)

    def add(self, completion: Completion, share: int = 1) -> None:
        """Charge this verdict its share of a call (grouped calls are split evenly)."""
        self.attempts += 1
        self.cached = completion.cached
        self.notes = completion.notes
        self.usage["calls"] += completion.calls / share
        self.usage["rejected"] += completion.rejected / share
        self.usage["prompt_tokens"] += completion.prompt_tokens / share
        self.usage["completion_tokens"] += completion.completion_tokens / share
        self.usage["latency_s"] += completion.latency_s / share


@runtime_checkable
class CriterionJudge(Protocol):
    """Criterion + conversation in, verdict out."""

    name: str  # stable: stored with each verdict, the key resume and the cache work by
    model: ChatModel | None  # what it asks (the pipeline closes and stops it), None if nothing
    criteria_per_call: int  # how many criteria ``judge_batch`` takes at once (1: one call each)

    def identity(self) -> dict[str, Any]:
        """What defines the judge (kind, model, template hash, settings), stored with the run."""
        ...

    async def judge(self, call: CallFn, conversation: Messages, criterion: Criterion) -> Verdict: ...

    async def judge_batch(self, call: CallFn, conversation: Messages, criteria: Sequence[Criterion]) -> list[Verdict]:
        """Several criteria of one conversation together, one verdict each, in order."""
        ...


# aggregation -----------------------------------------------------------------------------
JURY_PREFIX = "jury:"
REDUCERS = ("majority", "all", "any", "mean")


def jury_name(reducer: str) -> str:
    return f"{JURY_PREFIX}{reducer}"


def aggregate(reducer: str, votes: Sequence[Verdict]) -> Verdict:
    """The criterion's verdict from every judge's. One judge: its verdict, unchanged.

    Quorum: every judge must have answered; if one did not, the criterion is ungraded and the
    reason names it (a jury never shrinks silently; ``--resume`` asks that judge again).
    ``majority``: met when strictly more than half say met (a tie is not met); ``all``: met when
    every judge says so; ``any``: when one does; ``mean``: the mean P(met) of the judges that
    give one, met when it is >= 0.5 (ungraded when none gives P(met)).
    """
    if reducer not in REDUCERS:
        raise ValueError(f"unknown reducer {reducer!r} (known: {', '.join(REDUCERS)})")
    if len(votes) == 1:
        return votes[0]
    name, criterion = jury_name(reducer), votes[0].criterion_index
    missing = [v for v in votes if v.met is None]
    if missing:
        why = "; ".join(f"{v.judge}: {v.reason or 'no verdict'}" for v in missing)
        return Verdict(name, criterion, None, reason=f"{len(missing)} of {len(votes)} judges gave no verdict ({why})")
    said = [bool(v.met) for v in votes]
    probabilities = [v.p_met for v in votes if v.p_met is not None]
    p_met = sum(probabilities) / len(probabilities) if len(probabilities) == len(votes) else None
    if reducer == "majority":
        met = 2 * sum(said) > len(said)
    elif reducer == "all":
        met = all(said)
    elif reducer == "any":
        met = any(said)
    else:
        if not probabilities:
            return Verdict(name, criterion, None, reason="no judge gave P(met), which --jury mean averages")
        p_met = sum(probabilities) / len(probabilities)
        met = p_met >= 0.5
    explanation = f"{sum(said)} of {len(said)} judges: met; " + "; ".join(
        f"{v.judge}: {'met' if v.met else 'not met'}" for v in votes
    )
    return Verdict(name, criterion, met, p_met=p_met, explanation=explanation)
