"""Tables of the run store. Change them only together with a new Alembic migration."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """A timestamp that reads back timezone-aware (UTC) on every database: SQLite keeps none, so
    without this a time from SQLite and ``utcnow()`` could not be compared."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {dict[str, Any]: JSON, datetime: UtcDateTime()}


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int]
    n_examples: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), unique=True)
    benchmark: Mapped[str] = mapped_column(String(50))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    status: Mapped[str] = mapped_column(String(20), index=True)
    model: Mapped[str | None] = mapped_column(String(300))
    grader: Mapped[str | None] = mapped_column(String(300))
    config: Mapped[dict[str, Any]]
    medops_version: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    wall_seconds: Mapped[float] = mapped_column(default=0.0)
    summary: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    # What the run was made on, kept in the store so it stays usable without its source file;
    # None for runs recorded before migration 0005 (they fall back to the file, sha256-checked).
    item_set: Mapped[str | None] = mapped_column(String(64))  # item_sets.sha256
    plan: Mapped[list[Any] | None] = mapped_column(JSON)  # the job plan: [[item_index, repeat], ...]
    # who grades it (migration 0011): {"reducer": "majority", "judges": [{"name": ..., "identity": {...}}]};
    # None for runs recorded before, whose grades are one judge's
    judges: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class StoredItem(Base):
    """One benchmark item (a rubric example, an exam question), stored once by the sha256 of its JSON."""

    __tablename__ = "items"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[dict[str, Any]]


class Blob(Base):
    """Image bytes, stored once by their sha256: items and exports carry ``sha256:<hex>`` instead
    (``medops.content.keyed``), however many items or runs show the image (migration 0010)."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ItemSet(Base):
    """A loaded dataset as an ordered list of items, content-addressed: the same file loaded the
    same way is stored once, however many runs use it."""

    __tablename__ = "item_sets"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))  # which benchmark's items
    meta: Mapped[dict[str, Any]]  # set-level facts the benchmark needs (exam task, skipped counts)
    n_items: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ItemSetMember(Base):
    __tablename__ = "item_set_members"
    set_sha256: Mapped[str] = mapped_column(ForeignKey("item_sets.sha256", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    item_sha256: Mapped[str] = mapped_column(ForeignKey("items.sha256"))


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("run_id", "example_index", "repeat"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    example_index: Mapped[int]
    repeat: Mapped[int]
    prompt_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # model | given | ideal
    finish_reason: Mapped[str | None] = mapped_column(String(50))
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    calls: Mapped[int] = mapped_column(default=0)  # answered attempts (429s excluded)
    rejected: Mapped[int] = mapped_column(default=0, server_default="0")  # 429s (migration 0005)
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # before-call notes, e.g. PHI (0007)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Grade(Base):
    __tablename__ = "grades"
    __table_args__ = (
        UniqueConstraint("run_id", "example_index", "repeat", "criterion_index", "judge", name="uq_grades_verdict"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    example_index: Mapped[int]
    repeat: Mapped[int]
    criterion_index: Mapped[int]
    # the judge that gave this verdict (grading.judge; migration 0011): a jury stores one row per
    # juror, and the criterion's verdict is aggregated from them when read (store.queries.grades)
    judge: Mapped[str] = mapped_column(String(300))
    criteria_met: Mapped[bool | None] = mapped_column(Boolean)  # None: ungraded
    p_met: Mapped[float | None] = mapped_column(Float)  # --grader-verdict logprob
    ungraded_reason: Mapped[str | None] = mapped_column(Text)
    explanation: Mapped[str | None] = mapped_column(Text)
    raw_reply: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    calls: Mapped[int] = mapped_column(default=0)  # answered attempts (429s excluded)
    rejected: Mapped[int] = mapped_column(default=0, server_default="0")  # 429s (migration 0005)
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # before-call notes, e.g. PHI (0007)
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CachedCall(Base):
    __tablename__ = "call_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(50))
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    extra: Mapped[dict[str, Any] | None]  # logprobs and choice scores, for logprob verdicts
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Answer(Base):
    """An exam answer as scored: the letter read from the response and the rule that read it."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("run_id", "item_index", "repeat"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    item_index: Mapped[int]
    repeat: Mapped[int]
    item_id: Mapped[str] = mapped_column(String(200))
    gold: Mapped[str] = mapped_column(String(4))
    predicted: Mapped[str | None] = mapped_column(String(4))  # None: unparsed
    rule: Mapped[str | None] = mapped_column(String(40))
    correct: Mapped[bool] = mapped_column(Boolean)
    # the chosen option's probability, or the confidence the answer states (migration 0018); None: none
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One entry of the append-only audit trail (migration 0006), chained by hash to the one before.

    ``id`` is the event's sequence number, assigned as the last one + 1 while the append lock is
    held (never by a database sequence, whose rolled-back values would leave gaps that read as
    deletions). ``created_at`` is kept as the exact UTC text that was hashed. ``details`` hold
    ids, file names, rule outcomes and counts, never prompt or response text.
    """

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    created_at: Mapped[str] = mapped_column(String(32))  # e.g. 2025-05-07T06:14:12.123456Z
    actor: Mapped[str] = mapped_column(String(200))  # "os:<user>" or "token:<id>"
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]]
    details_sha256: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16))  # None: plain sha256; else the HMAC key's id


class Exchange(Base):
    """One request and its answer as production saw them (through ``medops gateway`` or ingested
    from logs; migration 0008). Text is stored as the PHI policy allows: redacted, or not at all."""

    __tablename__ = "exchanges"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # when the request arrived
    # the recorder's id for a gateway exchange (migration 0021): unique, so a retried write stores it once
    record_id: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    source: Mapped[str] = mapped_column(String(20))  # "gateway" | "ingest"
    route: Mapped[str] = mapped_column(String(200))  # e.g. /v1/chat/completions
    model: Mapped[str | None] = mapped_column(String(200))  # requested (gen_ai.request.model)
    response_model: Mapped[str | None] = mapped_column(String(200))  # answered (gen_ai.response.model)
    arm: Mapped[str] = mapped_column(String(20), default="primary")  # primary | candidate | shadow
    pair_id: Mapped[str | None] = mapped_column(String(64), index=True)  # a shadow copy and its primary share it
    conversation_id: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))
    application: Mapped[str | None] = mapped_column(String(200))
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[int | None]  # the HTTP status returned (None: the upstream never answered)
    error: Mapped[str | None] = mapped_column(Text)
    latency_s: Mapped[float | None] = mapped_column(Float)
    ttft_s: Mapped[float | None] = mapped_column(Float)  # time to the first streamed token
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    finish_reason: Mapped[str | None] = mapped_column(String(40))
    messages: Mapped[list[Any] | None] = mapped_column(JSON)  # the request's messages, after the PHI policy
    response: Mapped[str | None] = mapped_column(Text)  # the answer's text, after the PHI policy
    # the answer's tool calls (id, function name and arguments; streamed deltas joined), after the
    # PHI policy (migration 0010)
    response_tool_calls: Mapped[list[Any] | None] = mapped_column(JSON)
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # e.g. {"phi": {"policy": ..., "entities": {...}}}


class MonitorScore(Base):
    """One point of a monitored score series (migration 0008): online grading of a window of
    traffic, or a canary run, per tag (``all``, ``department:ER``, ``arm:candidate``, ...)."""

    __tablename__ = "monitor_scores"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(20), index=True)  # "online" | "canary"
    window_start: Mapped[datetime] = mapped_column(index=True)
    window_end: Mapped[datetime]
    tag: Mapped[str] = mapped_column(String(200), default="all")
    metric: Mapped[str] = mapped_column(String(200))
    value: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(default=0)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Alert(Base):
    """An alert that fired (migration 0008): which rule, its de-duplication key, what was sent where."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    rule: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(300), index=True)  # rule + scope: cooldown and de-duplication
    severity: Mapped[str] = mapped_column(String(20), default="warning")
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deliveries: Mapped[list[Any] | None] = mapped_column(JSON)  # [{"webhook": name, "status": ..., "error": ...}]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))


class User(Base):
    """A dashboard account (migration 0009). Only an Argon2 hash of the password is kept."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # viewer | reviewer | operator | admin
    password_hash: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))  # an audit actor
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token for the dashboard's API (migration 0009). Only its sha256 is kept: a token is
    32 random bytes, so a fast hash is as strong as a slow one and costs nothing per request."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    # migration 0012: the account the token belongs to (None: made from the shell, owned by the site);
    # "user": acts for that account (role capped by its role), "service": owned by an admin
    owner_id: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(20), default="service")


class WebSession(Base):
    """A signed-in browser (migration 0009): the cookie holds a random id, the store its sha256."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]  # signed out (or ended by an admin)


class LoginAttempt(Base):
    """One sign-in attempt (migration 0009), counted for rate limiting across server processes."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    name: Mapped[str] = mapped_column(String(100))
    client: Mapped[str] = mapped_column(String(100))
    succeeded: Mapped[bool] = mapped_column(Boolean)


class AuditTally(Base):
    """Refusals of one kind from one source within one minute (migration 0012): the first is an
    audit event at once, the others are counted here and appended as one event with their count
    once the minute has passed, so that a burst of bogus credentials cannot flood the chain."""

    __tablename__ = "audit_tallies"
    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(700), unique=True)  # action, actor, target, reason, minute
    minute: Mapped[str] = mapped_column(String(17), index=True)  # e.g. 2025-05-07T06:14Z
    action: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]]  # the first refusal's details (that one is in the trail already)
    count: Mapped[int]  # refusals after the first
    first_at: Mapped[str | None] = mapped_column(String(32))  # of those
    last_at: Mapped[str | None] = mapped_column(String(32))


class SiteSecret(Base):
    """A random secret made once per store (migration 0012): keys the hash of an unknown user
    name typed at a failed sign-in when no ``MEDOPS_AUDIT_KEY`` is set."""

    __tablename__ = "site_secrets"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class ReviewSet(Base):
    """A sample of a recorded rubric run for physicians to label (medops.review, migration 0013).
    Self-contained: its examples keep their conversation, response and criteria, so the set stays
    usable whatever happens to the run."""

    __tablename__ = "review_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # the run it was sampled from (no foreign key: the set outlives the run)
    run_id: Mapped[int] = mapped_column(index=True)
    strategy: Mapped[str] = mapped_column(String(20))
    seed: Mapped[int]
    reviewers: Mapped[int]  # how many reviewers should label each example
    n_examples: Mapped[int]
    n_criteria: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # reviewers see neither the grader's verdicts nor each other's labels (migration 0014)
    blinded: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class ReviewExample(Base):
    """One sampled example: ``content`` holds ``conversation``, ``response``, ``criteria`` (each with
    its points, tags and the run's verdicts: the aggregate and each juror's) and ``metadata``."""

    __tablename__ = "review_examples"
    __table_args__ = (UniqueConstraint("set_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("review_sets.id", ondelete="CASCADE"))
    position: Mapped[int]  # the example's index in the set (what labels refer to)
    example_index: Mapped[int]  # its index in the run
    repeat: Mapped[int]
    prompt_id: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]]


class ReviewLabel(Base):
    """One reviewer's label of one criterion of one example of a set."""

    __tablename__ = "review_labels"
    __table_args__ = (UniqueConstraint("set_id", "position", "criterion_index", "reviewer", name="uq_review_label"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("review_sets.id", ondelete="CASCADE"))
    position: Mapped[int]
    criterion_index: Mapped[int]
    reviewer: Mapped[str] = mapped_column(String(200))
    met: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: unsure (missing to agreement)
    source: Mapped[str] = mapped_column(String(20))  # import | dashboard
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReviewAdjudication(Base):
    """An operator's final label of one criterion where reviewers disagree: kept beside the
    reviewers' own labels, never over them (migration 0014)."""

    __tablename__ = "review_adjudications"
    __table_args__ = (UniqueConstraint("set_id", "position", "criterion_index", name="uq_review_adjudication"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("review_sets.id", ondelete="CASCADE"))
    position: Mapped[int]
    criterion_index: Mapped[int]
    met: Mapped[bool] = mapped_column(Boolean)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PreparedView(Base):
    """What the dashboard and reports show of a finished run, prepared once (migration 0020): the
    summary the run page reads (histogram values, filter counts, the samples' order), valid while
    the run's ``key`` (status and end time) is unchanged; a resumed run is prepared anew."""

    __tablename__ = "prepared_views"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PreparedSample(Base):
    """One sample of a prepared run, in the order its sample list shows them (migration 0020): read a
    page at a time; ``flags`` is ``|flag|flag|`` so one filter is a LIKE."""

    __tablename__ = "prepared_samples"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    flags: Mapped[str] = mapped_column(String(500))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
