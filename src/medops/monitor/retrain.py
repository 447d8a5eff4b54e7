"""Retraining on alert: a fired rule with ``action: retrain`` writes the training set of the
alert's window and starts the site's command, at most one at a time.

The set is ``rl prepare --from-exchanges`` over the alert's window (the conversations online
grading scored below the threshold, as the PHI policy stored them) in
``<output_dir>/alert-<id>/``. The command (``retrain.command``, split like a shell line but run
without a shell; or ``kubectl apply -f`` of ``retrain.job_manifest`` with ``${MEDOPS_TRAINING_SET}``
and ``${MEDOPS_ALERT_ID}`` filled in) is started in the background with ``MEDOPS_TRAINING_SET``
(the directory), ``MEDOPS_TRAINING_DATA`` (its train.jsonl) and ``MEDOPS_ALERT_ID`` in its
environment. A lock file in ``output_dir`` holds the started process's id: while that process
lives, another alert's retraining is skipped and says why. Every start, skip and failure is in
the audit trail (``retrain.started`` / ``retrain.skipped`` / ``retrain.failed``); ``dry_run``
shows the command and environment and writes, runs and locks nothing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from datetime import datetime
from pathlib import Path
from string import Template
from typing import Any

from medops.audit.trail import record
from medops.errors import UserError
from medops.monitor.policy import MonitorPolicy, MonitorRule, Retrain
from medops.rl.evidence import prepare_from_exchanges
from medops.store.repository import Store

LOCK = ".retrain.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child of this process is a zombie until reaped: reap it, it is not running
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True  # not our child, and it exists


def _take(lock: Path) -> int | None:
    """Take the lock (created atomically, so two checks at once cannot both take it); the pid of
    the running retraining that holds it otherwise. A lock whose holder died is taken over."""
    for _ in range(2):
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return None
        except FileExistsError:
            holder = _holder(lock)
            if holder is not None:
                return holder
            if lock.read_text().strip() == "":  # another check took it this instant and is starting
                return -1
            lock.unlink(missing_ok=True)  # its retraining ended: free
    return -1


def _holder(lock: Path) -> int | None:
    """The pid of the retraining that holds the lock, or None when it is free (or its holder died)."""
    try:
        pid = int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and _alive(pid) else None


def _command(settings: Retrain, directory: Path, environment: dict[str, str]) -> list[str]:
    if settings.job_manifest is None:
        assert settings.command is not None
        return shlex.split(settings.command)
    try:
        template = Path(settings.job_manifest).read_text("utf-8")
    except OSError as exc:
        raise UserError(f"retrain.job_manifest {settings.job_manifest}: cannot read it ({exc.strerror})") from None
    filled = directory / "job.yaml"
    if not settings.dry_run:
        filled.write_text(Template(template).safe_substitute(environment), encoding="utf-8")
    return shlex.split(settings.command) if settings.command else ["kubectl", "apply", "-f", str(filled)]


def start_retraining(
    store: Store, policy: MonitorPolicy, rule: MonitorRule, alert_id: int, window: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """What the alert's retraining did: ``started`` (with pid), ``skipped`` (and why), ``dry_run``
    or ``failed``; never raises for a command that cannot start (it is recorded)."""
    settings = policy.retrain
    assert settings is not None  # the policy requires it for action retrain
    root = Path(settings.output_dir)
    directory = root / f"alert-{alert_id}"
    environment = {
        "MEDOPS_TRAINING_SET": str(directory.resolve()),
        "MEDOPS_TRAINING_DATA": str((directory / "train.jsonl").resolve()),
        "MEDOPS_ALERT_ID": str(alert_id),
    }
    start = datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
    below = policy.retrain_below(rule)
    outcome: dict[str, Any] = {"alert_id": alert_id, "training_set": environment["MEDOPS_TRAINING_SET"], "below": below}
    target = f"alert:{alert_id}"
    lock = root / LOCK
    if settings.dry_run:
        outcome.update(status="dry_run", command=_command(settings, directory, environment), environment=environment)
        return outcome
    root.mkdir(parents=True, exist_ok=True)
    holder = _take(lock)
    if holder is not None:
        running = f"pid {holder}" if holder > 0 else "starting"
        outcome.update(status="skipped", reason=f"a retraining is running ({running}, {lock})")
        record(store, "retrain.skipped", target, {"alert_id": alert_id, "reason": outcome["reason"]})
        return outcome
    try:
        manifest = prepare_from_exchanges(
            store, directory, since=now - start, below=below, heldout=settings.heldout, now=now
        )
        command = _command(settings, directory, environment)
        with (directory / "command.log").open("ab") as log:
            process = subprocess.Popen(  # no shell: the command line is split, never interpreted
                command,
                env={**os.environ, **environment},
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `monitor check` / `monitor watch`
            )
    except (UserError, OSError) as exc:
        lock.unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc.strerror or exc}"
        outcome.update(status="failed", reason=reason)
        record(store, "retrain.failed", target, {"alert_id": alert_id, "reason": reason})
        return outcome
    lock.write_text(str(process.pid), encoding="utf-8")
    outcome.update(status="started", pid=process.pid, command=command, rows=manifest["train"]["rows"])
    record(
        store,
        "retrain.started",
        target,
        {
            "alert_id": alert_id,
            "rule": rule.label,
            "training_set": outcome["training_set"],
            "train_rows": manifest["train"]["rows"],
            "heldout_rows": manifest["heldout"]["rows"],
            "command": command[0],
            "pid": process.pid,
        },
    )
    return outcome
