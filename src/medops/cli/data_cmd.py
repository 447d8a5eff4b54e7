"""``medops data pull`` and ``medops data list``."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from medops.audit import record
from medops.cli.console import err, out
from medops.cli.options import DB_OPTION
from medops.datasets.hub import HUB_EXAMS, exam_cache_path, pull_exam
from medops.datasets.registry import BUILTIN_DATASETS, cached_path, pull
from medops.store.repository import Store

app = typer.Typer(help="Built-in datasets and the local cache.", no_args_is_help=True)


@app.command("pull")
def pull_cmd(
    name: str = typer.Argument(..., help=f"One of: {', '.join([*BUILTIN_DATASETS, *HUB_EXAMS])}."),
    db: str = DB_OPTION,
) -> None:
    """Download a built-in dataset into the cache (never again once it is there); the pull is
    recorded in the store's audit trail."""
    if name in HUB_EXAMS:
        path, size, sha, downloaded = pull_exam(name)
        _audit_pull(db, name, path.name, sha, size, downloaded)
        verb = "downloaded" if downloaded else "already cached"
        out.print(f"{name}: {verb} at {path} ({size:,} bytes, sha256 {sha})")
        return
    with Progress(
        "[bold]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(name, total=None)
        pulled = pull(name, lambda done, total: progress.update(task, completed=done, total=total))
    _audit_pull(db, name, pulled.path.name, pulled.sha256, pulled.size_bytes, pulled.downloaded)
    verb = "downloaded" if pulled.downloaded else "already cached"
    out.print(f"{name}: {verb} at {pulled.path} ({pulled.size_bytes:,} bytes, sha256 {pulled.sha256})")


def _audit_pull(db: str | None, name: str, file: str, sha256: str, size: int, downloaded: bool) -> None:
    details = {"name": name, "file": file, "sha256": sha256, "size_bytes": size, "downloaded": downloaded}
    record(Store.open(db), "data.pull", f"dataset:{name}", details)


@app.command("list")
def list_cmd() -> None:
    """Built-in datasets and whether each is cached."""
    for name, entry in BUILTIN_DATASETS.items():
        state = "cached" if cached_path(name).is_file() else "not cached"
        out.print(f"{name:24} {state:11} {entry.description}")
    for name, exam in HUB_EXAMS.items():
        state = "cached" if exam_cache_path(name).is_file() else "not cached"
        out.print(f"{name:24} {state:11} exam set from the Hugging Face hub: {exam.repo} ({exam.split})")
