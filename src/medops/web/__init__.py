"""``medops serve``: the dashboard (server-rendered pages) and its JSON API under ``/api/``, over
:mod:`medops.api` and the same store as the CLI. See docs/DASHBOARD.md."""

from medops.web.app import create_app

__all__ = ["create_app"]
