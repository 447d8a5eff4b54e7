"""How the dashboard's data reads: times (a date or an ISO time in, ISO text out) and intervals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from medops.errors import UserError

Z95 = 1.959963984540054  # a bootstrap std as an approximate 95% interval (normal approximation)


def moment(value: str | datetime | None, *, end: bool = False) -> datetime | None:
    """A date (``2025-05-07``: the whole day), an ISO time, or a datetime; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UserError(f"'{value}': expected a date (2025-05-07) or an ISO time") from None
        if end and len(text) == 10:  # a date: up to the end of that day
            if moment.date() == datetime.max.date():
                return None  # the end of the last day there is: no upper bound (not an overflow)
            moment += timedelta(days=1)
        value = moment
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def interval(metric: dict[str, Any]) -> tuple[float | None, float | None]:
    if "ci95_low" in metric:  # exam accuracies: Wilson intervals
        return metric["ci95_low"], metric["ci95_high"]
    std = metric.get("bootstrap_std")
    mean = metric.get("mean")
    if mean is None or std is None:
        return None, None
    floor, ceiling = min(0.0, mean), max(1.0, mean)  # scores are shares: the interval stays in [0, 1]
    return max(floor, mean - Z95 * std), min(ceiling, mean + Z95 * std)
