"""``medops monitor ...``: the deployed model under watch. Each group of commands lives in its own
module (traffic and ingest, quality, check) and registers on this app."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Watch the deployed model: traffic, online grading, canaries, drift, alerts.", no_args_is_help=True
)
