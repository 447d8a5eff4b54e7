"""Recording exchanges off the request path: a bounded queue and one writer thread.

The gateway hands each finished exchange to ``Recorder.submit`` (a non-blocking put; a full
queue, ``queue_size`` exchanges or ``MAX_QUEUED_MB`` of their bytes, drops the exchange and
counts it). One background thread takes whatever has queued,
applies the PHI policy to each exchange (``apply_phi``: the only place request and response
text is read for storage) and writes the batch with ``insert_exchanges`` in one transaction.
When a store that was written to fails (PostgreSQL restarting, a full disk), the batch is held
and retried every second while new exchanges wait in the queue; a ``record_id`` kept unique by the
store means a retried write never stores an exchange twice. A store never reached since the start
(misconfigured) drops each batch, counted, and is tried again a few seconds later; nothing is ever
raised into a request.

PHI policy (``--phi-policy``, ``MEDOPS_PHI_POLICY``; default ``redact``):

* ``redact``: messages, answer and the answer's tool calls are stored with every detected
  identifier replaced by a typed placeholder in every string the one walker reads
  (``medops.content.map_message``: text parts, names, tool-call arguments, tool results; image
  parts are not stored; the request's other fields, ``user`` included, are never stored)
  (one ``Redactor`` per exchange, so ``[PERSON_1]`` is the same person in the
  question and the answer); the counts by type go to ``notes["phi"]`` and to
  ``medops_gateway_phi_entities_redacted_total``. If detection cannot run, no text is stored
  (fail closed) and ``notes["phi"]["unavailable"]`` says so.
* ``block``: metadata only (model, arm, status, latency, tokens, ...), no text.
* ``allow``: text as it was sent and answered.

Detection costs CPU per exchange. Run in the gateway's process it would hold the interpreter
lock against the event loop and show in the requests' tail latency, so ``redact`` runs in a pool
of worker processes (``--redaction-workers``, default one per core the gateway may use;
``ProcessPoolExecutor``, spawned on the first batch, at a lower scheduling priority so that they
never take a core from the request path). Each batch is split across the workers; rows travel to
them and back through pipes, never through a file, so unredacted text never touches the disk.
If no worker can be had, the writer thread applies the policy itself. Each process keeps a bounded memo
of detection results by exact text and known names (``DetectionMemo``), so the messages a chat
client resends with every turn are detected once; a hit returns what detection would. The workers exit as soon
as the gateway does, even when the gateway is killed (``kill -9``): a thread in each waits on
the parent's sentinel.

When recording cannot keep up (``--record-overflow``): ``drop`` (the default) drops the exchange
that finds the queue full and counts it (``queue_full``); ``backpressure`` makes each chat request
wait for room before it is forwarded (``await Recorder.admit()``: at most ``queue_size``
exchanges admitted and not yet written, and the queue's bytes under ``MAX_QUEUED_MB``), so every
exchange served is handed to the writer; the wait is counted in
``medops_gateway_record_backpressure_seconds_total``.

Stored text is capped: messages and answer together keep at most ``MAX_STORED_CHARS``
characters per exchange, cut at a word, before the PHI policy sees them (so redaction time is
bounded too); what was cut is noted in ``notes["truncated"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from medops.content import map_message, map_messages
from medops.monitor.metrics import GatewayMetrics

DEFAULT_POLICY = "redact"
# Characters of text stored per exchange (messages and answer together; ~250,000 tokens): longer
# exchanges are cut, and flagged in notes["truncated"]
MAX_STORED_CHARS = 1_000_000
# Bytes of request and answer the queue may hold (a burst of large bodies would otherwise queue up
# to --queue-size of them in memory): beyond it, exchanges are dropped and counted (queue_full)
MAX_QUEUED_MB = 256.0
OVERFLOW_POLICIES = ("drop", "backpressure")
_STOP = object()


def machine_workers() -> int:
    """Redaction workers by default: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _omitted(part: dict[str, Any]) -> dict[str, Any]:
    """Images, audio, files cannot be redacted: under ``redact`` their payload is not stored."""
    return {"type": part.get("type"), "omitted": True}


# Detection results of this process (a redaction worker's): a resent conversation's earlier messages,
# a repeated system prompt, are detected once (the same text and known names give the same entities).
_memo: Any = None


def apply_phi(row: dict[str, Any], policy: str) -> dict[str, int]:
    """Rewrite ``row["messages"]`` and ``row["response"]`` in place as ``policy`` allows; note what
    was done in ``row["notes"]["phi"]`` and return the entities redacted, by type."""
    note: dict[str, Any] = {"policy": policy}
    row["notes"] = {**(row.get("notes") or {}), "phi": note}
    if policy == "allow":
        return {}
    if policy == "block":
        row["messages"] = None
        row["response"] = None
        row["response_tool_calls"] = None
        return {}
    from medops.privacy import Redactor, missing_components
    from medops.privacy.engine import DetectionMemo

    global _memo
    if _memo is None:
        _memo = DetectionMemo()

    if missing_components() is not None:  # fail closed: no text without detection
        row["messages"] = None
        row["response"] = None
        row["response_tool_calls"] = None
        note["unavailable"] = True
        return {}
    redactor = Redactor(memo=_memo)
    messages = row.get("messages")
    if isinstance(messages, list):
        row["messages"] = map_messages(messages, redactor.redact, _omitted)
    if isinstance(row.get("response"), str) and row["response"]:
        row["response"] = redactor.redact(row["response"])
    if row.get("response_tool_calls"):  # the answer's tool calls, walked as an assistant message's
        answered = map_message({"tool_calls": row["response_tool_calls"]}, redactor.redact)
        row["response_tool_calls"] = answered["tool_calls"]
    counts = {kind: n for kind, n in sorted(redactor.counts.items()) if n}
    note["entities"] = counts
    return counts


def _string_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_string_chars(v) for v in value.values())
    if isinstance(value, list):
        return sum(_string_chars(v) for v in value)
    return 0


def _cut(text: str, size: int) -> str:
    """``text`` cut to ``size`` characters, at the last whitespace when one is near (so that no
    identifier is cut in half and left unrecognisable to the PHI detector)."""
    if len(text) <= size:
        return text
    kept = text[:size]
    space = max(kept.rfind(" "), kept.rfind("\n"), kept.rfind("\t"))
    return kept[:space] if space >= max(0, size - 200) else kept


_WHOLE = frozenset({"role", "type"})


def _cap_strings(value: Any, budget: list[int]) -> Any:
    """``value`` with its strings, in order, cut to share ``budget[0]`` characters (spent as it
    goes); a message's ``role`` and a part's ``type`` are kept whole (they say what the rest is),
    and the items of a list that come after the budget is spent are left out."""
    if isinstance(value, str):
        kept = _cut(value, max(0, budget[0]))
        budget[0] -= len(kept)
        return kept
    if isinstance(value, dict):
        kept_whole = {k: v for k, v in value.items() if k in _WHOLE and isinstance(v, str)}
        budget[0] -= sum(map(len, kept_whole.values()))
        return {k: kept_whole[k] if k in kept_whole else _cap_strings(v, budget) for k, v in value.items()}
    if isinstance(value, list):  # items after the budget is spent are left out (structure is bounded too)
        kept = []
        for item in value:
            if budget[0] <= 0:
                break
            kept.append(_cap_strings(item, budget))
        return kept
    return value


def cap_stored_text(row: dict[str, Any], max_chars: int = MAX_STORED_CHARS) -> None:
    """Cut ``row["messages"]`` and ``row["response"]`` to ``max_chars`` characters together (when
    both are long, each keeps at least half) and note the original sizes in ``notes["truncated"]``."""
    messages, response = row.get("messages"), row.get("response")
    message_chars = _string_chars(messages)
    response_chars = len(response) if isinstance(response, str) else 0
    if message_chars + response_chars <= max_chars:
        return
    if isinstance(response, str):
        row["response"] = response = _cut(response, max(max_chars // 2, max_chars - message_chars))
    row["messages"] = _cap_strings(messages, [max_chars - _string_chars(response)])
    truncated = {"max_chars": max_chars, "messages_chars": message_chars, "response_chars": response_chars}
    row["notes"] = {**(row.get("notes") or {}), "truncated": truncated}


def _start_redaction_process() -> None:
    """In the redaction process: yield the CPU to the request path (its work can wait; a request
    cannot), and exit when the gateway does, however it ends (its sentinel closes when it dies)."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="medops-parent-watch", daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def apply_phi_batch(rows: list[dict[str, Any]], policy: str) -> list[tuple[dict[str, Any] | None, dict[str, int]]]:
    """``apply_phi`` over a batch (in the redaction process): each row rewritten with its counts,
    or None for a row the policy could not process (it is dropped, never stored raw)."""
    done: list[tuple[dict[str, Any] | None, dict[str, int]]] = []
    for row in rows:
        try:
            done.append((row, apply_phi(row, policy)))
        except Exception:
            done.append((None, {}))
    return done


class Recorder:
    """``submit(row)`` never blocks or raises; a thread writes what queued, in batches.

    ``row`` holds ``Exchange`` columns; ``messages`` and ``response`` as they were sent and
    answered (the thread applies the PHI policy before anything is stored)."""

    def __init__(
        self,
        db: str | None,
        *,
        policy: str = DEFAULT_POLICY,
        metrics: GatewayMetrics | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        retry_s: float = 5.0,
        hold_retry_s: float = 1.0,
        scores_every_s: float = 15.0,
        linger_s: float = 0.05,
        max_text_chars: int = MAX_STORED_CHARS,
        max_queued_mb: float = MAX_QUEUED_MB,
        redaction_workers: int | None = None,
        overflow: str = "drop",
    ):
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, not {overflow!r}")
        self.db = db
        self.policy = policy
        self.overflow = overflow
        self.redaction_workers = redaction_workers or machine_workers()
        self.capacity = queue_size
        self.metrics = metrics or GatewayMetrics()
        self.batch_size = batch_size
        self.retry_s = retry_s
        self.hold_retry_s = hold_retry_s
        self._opened_once = False  # a store never reached (misconfigured) drops; one that was written to holds
        self._closing = threading.Event()
        self.scores_every_s = scores_every_s
        self.linger_s = linger_s
        self.max_text_chars = max_text_chars
        self.max_queued_bytes = int(max_queued_mb * 2**20)
        self._bytes_in = self._bytes_out = 0  # bytes of the exchanges queued, and taken off the queue
        self.ready = threading.Event()  # set once the thread has tried the store and imported its writer
        # under backpressure admission bounds the queue (admit), so the queue itself need not
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=0 if overflow == "backpressure" else queue_size)
        self._admitted = 0  # chat requests admitted under backpressure (event loop's thread only)
        self._settled = 0  # of those, taken off the queue and written or dropped (writer's thread only)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._room: asyncio.Event | None = None
        self.store: Any = None
        self.store_error: str | None = None
        self._next_open = 0.0
        self._next_scores = 0.0
        self._thread = threading.Thread(target=self._run, name="medops-recorder", daemon=True)
        self._redaction: ProcessPoolExecutor | None = None
        self.recorded = 0
        self.dropped = 0

    # request path --------------------------------------------------------------------------
    def _full(self) -> bool:
        held = self._admitted - self._settled
        return held >= self.capacity or self._bytes_in - self._bytes_out > self.max_queued_bytes

    async def admit(self) -> None:
        """Under ``backpressure``: wait until the recorder has room for one more exchange and hold
        it; the exchange's ``submit(..., admitted=True)`` (or ``release()``) gives it back."""
        if self._full():
            waited = time.perf_counter()
            if self._room is None:
                self._loop, self._room = asyncio.get_running_loop(), asyncio.Event()
            while self._full():
                self._room.clear()
                with contextlib.suppress(asyncio.TimeoutError):  # re-checked at least every second
                    await asyncio.wait_for(self._room.wait(), 1.0)
            self.metrics.backpressure.inc(time.perf_counter() - waited)
        self._admitted += 1

    def release(self) -> None:
        """An admitted request that ends with nothing to record gives its room back."""
        self._admitted -= 1
        self._wake()

    def submit(
        self, row: dict[str, Any] | Callable[[], dict[str, Any]], size: int = 0, *, admitted: bool = False
    ) -> bool:
        """Queue ``row``, or a function that makes it (called in the thread, so that parsing
        happens off the request path), holding ``size`` bytes; False when the queue is full, in
        exchanges or in bytes (the row is dropped). ``admitted``: its room was held by ``admit``,
        so it is always queued."""
        if admitted:
            self.queue.put_nowait((row, size, True))
            self._bytes_in += size
            return True
        if self.overflow == "backpressure" and self.queue.qsize() >= self.capacity:  # a shadow copy, unadmitted
            self._drop("queue_full", 1)
            return False
        if size and self._bytes_in - self._bytes_out + size > self.max_queued_bytes:
            self._drop("queue_full", 1)
            return False
        try:
            self.queue.put_nowait((row, size, False))
        except queue.Full:
            self._drop("queue_full", 1)
            return False
        self._bytes_in += size  # written by the submitting thread only, as _bytes_out by the writer's
        return True

    def _wake(self) -> None:
        if self._room is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._room.set)

    # writer thread -------------------------------------------------------------------------
    def start(self) -> Recorder:
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Write what has queued (up to ``timeout`` seconds), then stop the thread."""
        if not self._thread.is_alive():
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    self._closing.set()
                    return
        self._thread.join(max(0.1, deadline - time.monotonic() - 1.0))
        self._closing.set()  # rows still held for a store that is away are dropped now, and counted
        self._thread.join(max(0.1, deadline - time.monotonic()))
        if self._redaction is not None:  # idle now: wait for the process to exit, so none outlives us
            self._redaction.shutdown(wait=True, cancel_futures=True)

    def _drop(self, reason: str, n: int) -> None:
        self.dropped += n
        self.metrics.dropped.labels(reason).inc(n)

    def _open(self) -> Any:
        if self.store is not None:
            return self.store
        now = time.monotonic()
        if now < self._next_open:
            return None
        from medops.store.repository import Store

        try:
            self.store = Store.open(self.db)
            self.store_error = None
            self._opened_once = True
        except Exception as exc:  # a UserError, or anything a driver raises: never fatal here
            self._next_open = now + (self.hold_retry_s if self._opened_once else self.retry_s)
            if self.store_error is None:
                import sys

                print(f"medops gateway: store unavailable, exchanges are dropped and counted: {exc}", file=sys.stderr)
            self.store_error = str(exc)
        return self.store

    def _run(self) -> None:
        try:
            self._open()
            for module in ("medops.store.exchanges", "medops.store.scores_read"):  # before the gateway's gc.freeze
                importlib.import_module(module)
        finally:
            self.ready.set()
        stopping = False
        while not stopping:
            try:
                first = self.queue.get(timeout=1.0)
            except queue.Empty:
                self._refresh_scores()
                continue
            if first is not _STOP and self.linger_s > 0:
                # let a batch gather: one transaction (and one wake-up of this thread, which competes
                # with the event loop for the interpreter lock) per many exchanges, not per exchange
                time.sleep(self.linger_s)
            batch = []
            admitted = 0
            item = first
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item[0])
                    self._bytes_out += item[1]
                    admitted += item[2]
                if len(batch) >= self.batch_size:
                    break
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
            self.metrics.queue_depth.set(self.queue.qsize())
            if batch:
                self._write(batch)
            if admitted:
                self._settled += admitted
                self._wake()
            self._refresh_scores()

    def _write(self, items: list[Any]) -> None:
        batch = []
        for item in items:
            try:
                row = item() if callable(item) else item
                cap_stored_text(row, self.max_text_chars)
            except Exception:
                self._drop("error", 1)
                continue
            batch.append(row)
        if self._open() is None and (self._closing.is_set() or not self._opened_once):
            self._drop("store_unavailable", len(batch))
            return
        rows = []
        for row, counts in self._apply_policy(batch):
            if row is None:  # one exchange the policy cannot process is dropped, never stored raw
                self._drop("error", 1)
                continue
            for entity, n in counts.items():
                self.metrics.phi_entities.labels(entity).inc(n)
            rows.append(row)
        if rows:
            self._insert(rows)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        """Write ``rows``. When the write fails (PostgreSQL restarting, a full disk) they are held
        and retried every ``hold_retry_s`` while new exchanges wait in the queue (its overflow is
        counted ``queue_full``); each row carries a ``record_id`` the store keeps unique, so a
        retry whose first attempt had committed stores nothing twice. Rows still unwritten when
        the recorder closes are dropped and counted ``store_unavailable``."""
        from medops.store.exchanges import insert_exchanges

        for row in rows:
            row.setdefault("record_id", uuid.uuid4().hex)
        while True:
            store = self._open()
            if store is not None:
                try:
                    insert_exchanges(store, rows)
                except Exception as exc:
                    self._write_failed(store, exc, len(rows))
                else:
                    self.recorded += len(rows)
                    self.metrics.recorded.inc(len(rows))
                    return
            if self._closing.is_set() or (store is None and not self._opened_once):
                self._drop("store_unavailable", len(rows))
                return
            self._closing.wait(max(0.05, self._next_open - time.monotonic()))

    def _write_failed(self, store: Any, exc: Exception, held: int) -> None:
        if self.store_error is None:  # once per outage; the driver's class only (its text may quote the rows)
            import sys

            cause = type(getattr(exc, "orig", None) or exc).__name__
            print(f"medops gateway: store write failed ({cause}); {held} exchanges held and retried", file=sys.stderr)
        self.store_error = str(exc)
        with contextlib.suppress(Exception):
            store.engine.dispose()
        self.store = None
        self._next_open = time.monotonic() + self.hold_retry_s

    def _apply_policy(self, batch: list[dict[str, Any]]) -> list[tuple[dict[str, Any] | None, dict[str, int]]]:
        """The PHI policy over a batch: detection split across the redaction processes, else in
        this thread."""
        if self.policy == "redact":
            try:
                if self._redaction is None:
                    self._redaction = ProcessPoolExecutor(
                        self.redaction_workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_start_redaction_process,
                    )
                share = -(-len(batch) // self.redaction_workers)
                parts = [
                    self._redaction.submit(apply_phi_batch, batch[i : i + share], self.policy)
                    for i in range(0, len(batch), share)
                ]
                return [done for part in parts for done in part.result()]
            except Exception:  # no worker process (or it died): the same rule, in this thread
                if self._redaction is not None:
                    self._redaction.shutdown(wait=False, cancel_futures=True)
                self._redaction = None
        return apply_phi_batch(batch, self.policy)

    def _refresh_scores(self) -> None:
        now = time.monotonic()
        if now < self._next_scores or self._open() is None:
            return
        self._next_scores = now + self.scores_every_s
        from medops.store.scores_read import latest_scores

        with contextlib.suppress(Exception):
            self.metrics.set_online_scores(latest_scores(self.store))
