"""Options shared by several commands."""

from __future__ import annotations

import typer

DB_OPTION = typer.Option(
    None, "--db", envvar="MEDOPS_DB", help="Store: SQLite file or database URL [default: ./medops.db]."
)
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON on stdout, nothing else.")
