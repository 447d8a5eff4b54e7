"""Pages from Jinja2 templates. Every value is escaped (autoescape is on for every template, not
only ``.html`` names); the one thing marked safe is SVG from the plot helpers, which escape their text."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from medops import __version__
from medops.content import text_of

DASH = "\u2013"  # an en dash for a missing value

NAV = (
    ("runs", "/runs", "Runs", "viewer"),
    ("compare", "/compare", "Compare", "viewer"),
    ("gates", "/gates", "Gates", "viewer"),
    ("monitoring", "/monitoring", "Monitoring", "viewer"),
    ("datasets", "/datasets", "Datasets", "viewer"),
    ("reviews", "/reviews", "Reviews", "reviewer"),
    ("audit", "/audit", "Audit", "admin"),
    ("admin", "/admin", "Accounts", "admin"),
)


def _num(value: Any, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _signed(value: Any, digits: int = 3) -> str:
    return DASH if value is None else f"{value:+.{digits}f}"


def _when(value: Any) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM`` (UTC as stored)."""
    if value is None:
        return DASH
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value).replace("T", " ")[:16]


def _plain(value: Any) -> str:
    """A detail value as text: JSON for lists and mappings (escaped by autoescape like any text)."""
    if value is None:
        return DASH
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + urlencode(params) if params else "?"


ENV = Environment(
    loader=PackageLoader("medops.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)
ENV.filters.update(num=_num, signed=_signed, when=_when, plain=_plain, text=text_of, text_of=text_of)


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    caller = getattr(request.state, "caller", None)
    principal = caller.principal if caller else None
    nav = [item for item in NAV if principal is not None and principal.can(item[3])]
    page = ENV.get_template(template).render(
        request=request,
        principal=principal,
        csrf=caller.csrf if caller else None,
        nav=nav,
        version=__version__,
        query=lambda **changes: _query(request, **changes),
        **context,
    )
    return HTMLResponse(page, status_code=status)
