"""Errors that are the user's to fix.

The CLI turns a ``UserError`` into one line on stderr and exit status 2, never a traceback.
Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input, configuration or environment: a message the user can act on."""


class NotFound(UserError):
    """What was asked for (a run, an example, an alert) does not exist: a 404 in the dashboard."""


class DataError(UserError):
    """A data file is malformed; the message names the file, the line and the field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")
