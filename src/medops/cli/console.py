"""Consoles: results on stdout, everything for humans (progress, warnings, errors) on stderr."""

from __future__ import annotations

import warnings

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)


def install_warning_printer() -> None:
    warnings.showwarning = _show_warning
