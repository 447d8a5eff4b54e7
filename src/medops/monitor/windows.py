"""Durations and time windows for the monitor commands (``--since 1h``, ``--every 10m``).

``parse_duration("10m")`` -> ``timedelta(minutes=10)``; ``window_bounds("1h")`` -> the last hour,
``(now - 1h, now)`` in UTC. Units: ``s`` seconds, ``m`` minutes, ``h`` hours, ``d`` days, ``w``
weeks; a bare number is seconds; compound forms such as ``1h30m`` add up.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from medops.errors import UserError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_WHOLE = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*[smhdw])+\s*$", re.IGNORECASE)


MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """``"10m"``, ``"1h"``, ``"6h"``, ``"2d"``, ``"1h30m"``, ``"90"`` (seconds) -> a positive timedelta
    of at most ``MAX_DURATION`` (ten years: any longer window reaches before every record).

    Anything else is a one-line ``UserError``."""
    try:
        if isinstance(text, timedelta):
            value = text
        elif isinstance(text, (int, float)) and not isinstance(text, bool):
            value = timedelta(seconds=float(text))
        else:
            raw = str(text).strip()
            if re.fullmatch(r"\d+(?:\.\d+)?", raw):
                value = timedelta(seconds=float(raw))
            elif _WHOLE.match(raw):
                seconds = sum(float(n) * UNITS[u.lower()] for n, u in _PART.findall(raw))
                value = timedelta(seconds=seconds)
            else:
                raise UserError(f"not a duration: {text!r} (use e.g. 30s, 10m, 1h, 6h, 2d, 1w or 1h30m)")
    except OverflowError:
        value = MAX_DURATION + timedelta(days=1)
    if value <= timedelta(0):
        raise UserError(f"a duration must be positive: {text!r}")
    if value > MAX_DURATION:
        raise UserError(f"a duration must be at most 10 years: {text!r}")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling: ``timedelta(hours=6)`` -> ``"6h"``, 90 s -> ``"1m30s"``."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one, from a user or a file, is taken to be UTC)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_since(text: str | None, flag: str = "--since") -> datetime | None:
    """A ``--since``: an ISO time (UTC unless it says otherwise) or a duration back from now."""
    if text is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return datetime.now(timezone.utc) - parse_duration(text)
    except UserError:
        raise UserError(f"{flag} '{text}': expected a duration (1h, 7d) or an ISO time (2025-05-07T06:00Z)") from None


def window_bounds(
    since: str | timedelta | datetime | None, now: datetime | None = None
) -> tuple[datetime | None, datetime]:
    """``(start, end)`` of the window ending ``now`` (default: the current time), aware UTC.

    ``since`` is a duration (``"1h"`` -> the last hour), an absolute start (a datetime), or None
    (everything up to now: start None)."""
    end = as_utc(now) if now is not None else datetime.now(timezone.utc)
    if since is None:
        return None, end
    if isinstance(since, datetime):
        return as_utc(since), end
    return end - parse_duration(since), end
