"""Recording events, verifying the chain, exporting it for offline checks.

Every event: when (UTC), who (``os:<user>`` or ``token:<id>``), what (``action``), on what
(``target``), details (ids, file names, rule outcomes, counts: never prompt or response text,
never a secret), the sha256 of those details, the previous event's hash and its own hash. With
``MEDOPS_AUDIT_KEY`` set, hashes are HMAC-SHA256 under that key, so that nobody without the key
can rewrite the chain and recompute it. The exact hash is defined in ``medops.store.audit`` and
in docs/PRIVACY.md ("The audit trail"), with a stand-alone verifier.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medops.errors import UserError
from medops.store import audit as rows
from medops.store.repository import Store

KEY_ENV = "MEDOPS_AUDIT_KEY"

# Actions medops records (docs/PRIVACY.md lists them with their details).
ACTIONS = {
    "run.started": "a run started or was resumed (benchmark, model and grader names, data file name)",
    "run.ended": "a run ended (status, score, failed calls, examples)",
    "phi.summary": "a run's PHI policy summary (counts of what the guard redacted or refused)",
    "gate.decision": "a release gate was evaluated (each rule with its outcome, passed or not)",
    "run.export": "a run's rows were exported (format, row count, file name)",
    "run.report": "a report was built (format, baseline, file name)",
    "data.pull": "a built-in dataset was downloaded or found in the cache (name, sha256, size)",
    "audit.export": "the audit trail itself was exported (file name, events)",
    "alert.fired": "a monitor alert fired (alert id, rule, key, metric, value)",
    "alert.acknowledged": "someone acknowledged an alert in the dashboard",
    "examples.viewed": "an admin viewed a run's examples unredacted (run id, which examples, how many)",
    "user.login": "a dashboard sign-in (the client's address; via oidc and the issuer for single sign-on)",
    "user.login_failed": "a refused sign-in (client, and why: unknown user, wrong password, disabled, rate limited, "
    "or for single sign-on: state mismatch, id token refused, no mapped role)",
    "user.logout": "a dashboard sign-out",
    "user.created": "a dashboard user was created (role; never the password)",
    "user.disabled": "a dashboard user was disabled (their sessions end)",
    "user.password_changed": "a user's password was replaced (their sessions end)",
    "user.role_changed": "a user's role changed at a single sign-on (from, to, the issuer whose roles map to it)",
    "token.created": "an API token was issued (its id, name and role; never the token)",
    "token.revoked": "an API token was revoked",
    "token.used": "an API request authenticated with a token (the route)",
    "token.refused": "API requests with an unknown or revoked token, one event per client, token, reason and minute "
    "(the first route, client, why, count; never the token)",
    "user.removed": "a dashboard user was removed (their tokens revoked, their sessions ended; their history stays)",
    "review.create": "a review set was sampled from a run (run id, strategy, seed, reviewers, examples, criteria)",
    "review.labels": "a reviewer's labels were stored in a review set (reviewer, label count, file name, source)",
    "review.export": "a review set's labels were exported (row count, file name)",
    "store.prune": "records past their retention were deleted (the limits, counts by kind, referenced runs kept)",
    "store.backup": "a backup of the store was written (file name); recorded first, so the backup holds it",
    "store.restore": "the store was restored from a backup (file name, sha256), after its trail verified",
    "audit.unkeyed_before": "the site declared that the unkeyed events before a sequence number predate its audit key",
}
DECLARATION = "audit.unkeyed_before"
# Called with (store, event) after each event is appended (e.g. the anchor written after a gate).
AFTER_RECORD: list[Callable[[Store, dict[str, Any]], None]] = []


def actor(token_id: str | None = None) -> str:
    """Who acts: ``token:<id>`` for a call made with an API token, else ``os:<user>`` (the OS account)."""
    if token_id:
        return f"token:{token_id}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        user = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"os:{user}"


_current_actor = actor  # ``record`` and ``export`` take a parameter of the same name


def audit_key() -> bytes | None:
    """The HMAC key from ``MEDOPS_AUDIT_KEY`` (its UTF-8 bytes), or None when unset or empty."""
    value = os.environ.get(KEY_ENV)
    return value.encode() if value else None


def record(
    store: Store, action: str, target: str, details: dict[str, Any] | None = None, actor: str | None = None
) -> dict[str, Any]:
    """Append one event (keyed when ``MEDOPS_AUDIT_KEY`` is set) and return it as stored."""
    who = actor if actor is not None else _current_actor()
    event = rows.append(store, actor=who, action=action, target=target, details=details or {}, key=audit_key())
    for hook in AFTER_RECORD:
        hook(store, event)
    return event


def refused(store: Store, action: str, target: str, details: dict[str, Any], *, actor: str, reason: str) -> None:
    """Count a refusal (a bogus token, a failed sign-in) in its minute's tally: each (action, actor,
    target, reason) becomes one event a minute, with the count and the first refusal's details,
    so refusals sent by anyone without credentials cannot flood the trail."""
    rows.tally(store, actor=actor, action=action, target=target, details=details, bucket=(reason,), key=audit_key())


def flush(store: Store, *, everything: bool = False) -> int:
    """Append the refusal tallies of the minutes that have passed (``everything``: this one's too)."""
    return rows.flush(store, key=audit_key(), everything=everything)


@dataclass
class Verification:
    intact: bool  # False: ``broken_seq`` names the first event that does not verify
    events: int  # events checked
    keyed: int  # of which keyed (HMAC)
    unverified: int  # keyed events whose hash could not be checked (no key given)
    head_seq: int | None  # the last event: note it to detect a later truncation
    head_hash: str | None
    broken_seq: int | None = None
    reason: str | None = None
    unkeyed_before: int | None = None  # unkeyed events before this seq were declared to predate the key
    anchors: int = 0  # anchors checked (``--anchors``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if not self.intact:
            return f"audit trail broken at event {self.broken_seq}: {self.reason}"
        if not self.events:
            return "audit trail intact: no events yet"
        keyed = f", {self.keyed} keyed" if self.keyed else ""
        return f"audit trail intact: {self.events} events{keyed}; last event {self.head_seq}, hash {self.head_hash}"


def _declared_bound(events: Iterable[dict[str, Any]], key: bytes) -> int | None:
    """The highest ``unkeyed_before`` of the declarations keyed with ``key`` whose own hash holds
    (a declaration written without the key counts for nothing)."""
    our_key_id, bound = rows.key_id(key), None
    for event in events:
        if event["action"] == DECLARATION and event["key_id"] == our_key_id:
            value = event["details"].get("unkeyed_before")
            if isinstance(value, int) and rows.event_hash(event, key) == event["hash"]:
                bound = value if bound is None else max(bound, value)
    return bound


def verify_events(
    events: Iterable[dict[str, Any]],
    key: bytes | None,
    *,
    unkeyed_before: int | None = None,
    declarations: Iterable[dict[str, Any]] | None = None,
) -> Verification:
    """Recompute the chain in order; stop at the first event whose sequence number, details
    hash, previous hash or own hash does not match (edited, deleted or reordered). With a key,
    an unkeyed event counts only when a keyed declaration (``audit.unkeyed_before`` among
    ``declarations``, by default the events themselves; or ``unkeyed_before`` given here) says it
    predates the key, and no keyed event comes before it."""
    expected, prev_hash, count, keyed, unverified = 1, rows.GENESIS, 0, 0, 0
    head: dict[str, Any] | None = None
    keyed_seen = False
    our_key_id = rows.key_id(key) if key is not None else None
    bound = None
    if key is not None:
        if declarations is None:
            events = declarations = list(events)
        declared = _declared_bound(declarations, key)
        bound = max((b for b in (declared, unkeyed_before) if b is not None), default=None)

    def broken(seq: int, reason: str) -> Verification:
        return Verification(
            False, count, keyed, unverified, head and head["seq"], head and head["hash"], seq, reason, bound
        )

    for event in events:
        seq = event["seq"]
        if seq != expected:
            if seq > expected:
                missing = f"event {expected}" if seq == expected + 1 else f"events {expected}-{seq - 1}"
                return broken(seq, f"{missing} before it {'is' if seq == expected + 1 else 'are'} missing (deleted)")
            return broken(seq, f"it comes after event {expected - 1} (events reordered or renumbered)")
        if rows.details_sha256(event["details"]) != event["details_sha256"]:
            return broken(seq, "its details were changed after it was recorded")
        if event["prev_hash"] != prev_hash:
            before = "the start of the chain" if seq == 1 else f"event {seq - 1}'s hash"
            return broken(seq, f"its prev_hash does not match {before} (an event was edited, removed or reordered)")
        if event["key_id"] is not None:
            keyed += 1
            keyed_seen = True
            if key is None:
                unverified += 1
            elif event["key_id"] != our_key_id:
                return broken(
                    seq, f"it was keyed with another key (key id {event['key_id']}; {KEY_ENV} has {our_key_id})"
                )
            elif rows.event_hash(event, key) != event["hash"]:
                return broken(seq, "its fields were changed after it was recorded (the keyed hash does not match)")
        else:
            if key is not None and keyed_seen:
                return broken(seq, "it is not keyed although an earlier event is (the chain was rewritten)")
            if key is not None and (bound is None or seq >= bound):
                return broken(
                    seq,
                    "it is not keyed and no keyed declaration says it predates the key (the chain may have been "
                    "rewritten without the key; if the site recorded it before setting the key, declare it with "
                    "medops audit verify --unkeyed-before SEQ)",
                )
            if rows.event_hash(event, None) != event["hash"]:
                return broken(seq, "its fields were changed after it was recorded (the hash does not match)")
        prev_hash, expected, count, head = event["hash"], expected + 1, count + 1, event
    return Verification(
        True, count, keyed, unverified, head and head["seq"], head and head["hash"], unkeyed_before=bound
    )


def verify(
    store: Store,
    key: bytes | None = None,
    *,
    use_env_key: bool = True,
    anchors: list[dict[str, Any]] | None = None,
) -> Verification:
    """Verify the store's whole chain (with ``MEDOPS_AUDIT_KEY`` unless ``key`` is given), then
    that it is as long as, and agrees with, every anchor given (``medops.audit.anchors.read``)."""
    if key is None and use_env_key:
        key = audit_key()
    declarations = rows.events(store, action=DECLARATION) if key is not None else None
    result = verify_events(rows.events(store), key, declarations=declarations)
    if result.intact and anchors:
        wanted = {anchor["seq"] for anchor in anchors}
        return check_anchors(result, {e["seq"]: e for e in rows.events(store) if e["seq"] in wanted}, anchors)
    return result


def check_anchors(
    result: Verification, by_seq: dict[int, dict[str, Any]], anchors: list[dict[str, Any]]
) -> Verification:
    """The first anchor the intact trail ``result`` is shorter than or disagrees with, as broken."""
    for anchor in anchors:
        name = f"anchor {anchor['where']} (event {anchor['seq']}, written {anchor['time']})"
        event = by_seq.get(anchor["seq"])
        if anchor["seq"] > (result.head_seq or 0):
            reason = (
                f"the trail ends at event {result.head_seq or 0} but {name} saw it reach event {anchor['seq']}: "
                "its newest events were deleted (truncated)"
            )
        elif anchor["seq"] and (event is None or event["hash"] != anchor["hash"]):
            reason = f"event {anchor['seq']} is not the one {name} saw (its hash differs): the trail was rewritten"
        else:
            continue
        result.intact, result.broken_seq, result.reason = False, anchor["seq"], reason
        break
    result.anchors = len(anchors)
    return result


def declare_unkeyed_before(store: Store, seq: int, *, actor: str | None = None) -> Verification:
    """Record, keyed, that the unkeyed events before ``seq`` predate the key (``medops audit
    verify --unkeyed-before SEQ``), once the chain verifies with that declaration."""
    key = audit_key()
    if key is None:
        raise UserError(f"--unkeyed-before needs {KEY_ENV}: the declaration is recorded keyed with it")
    found = list(rows.events(store))
    head = found[-1]["seq"] if found else 0
    if not 1 <= seq <= head + 1:
        raise UserError(
            f"--unkeyed-before {seq}: use a sequence number from 1 to {head + 1} (the trail has {head} events)"
        )
    result = verify_events(found, key, unkeyed_before=seq)
    if not result.intact:
        return result
    record(store, DECLARATION, "audit", {"unkeyed_before": seq, "head_seq": head or None}, actor=actor)
    return verify(store, key)


def events(store: Store, last: int | None = None) -> list[dict[str, Any]]:
    """The stored events, oldest first (the newest ``last`` only, when given)."""
    return list(rows.events(store, last=last))


def export(store: Store, output: Path, actor: str | None = None) -> int:
    """Write the whole chain as JSONL (one event per line, every hashed field), atomically;
    records an ``audit.export`` event after it. Returns the number of events written."""
    output = Path(output)
    parent = output.expanduser().resolve().parent
    if not parent.is_dir():
        raise UserError(f"cannot write {output}: folder {parent} does not exist")
    count = 0
    head = None
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{output.name}.")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for event in rows.events(store):
                handle.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
                count, head = count + 1, event
        os.replace(tmp, output)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    record(
        store,
        "audit.export",
        "audit",
        {"file": output.name, "events": count, "last_seq": head and head["seq"]},
        actor=actor,
    )
    return count
