"""One chart the report helpers (``medops.reports.plots``) lack: a score series over time, as
inline SVG (no JavaScript, nothing fetched). Every label is escaped."""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 200


def _time(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def series(title: str, points: list[dict[str, Any]], alerts: list[str] = ()) -> str:  # type: ignore[assignment]
    """Points (``window_start``, ``value``, ``drop``) as a line with dots; a drop is a red diamond;
    ``alerts`` (ISO times) are dashed vertical markers."""
    shown = [p for p in points if p.get("value") is not None]
    if not shown:
        return ""
    left, right, top, bottom = 44, 12, 28, 28
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom
    times = [_time(p["window_start"]) for p in shown]
    t0, t1 = min(times), max(times)
    span = (t1 - t0) or 1.0
    values = [float(p["value"]) for p in shown]
    lo, hi = min(0.0, min(values)), max(1.0, max(values))

    def x(t: float) -> float:
        return left + ((t - t0) / span if t1 > t0 else 0.5) * plot_w

    def y(v: float) -> float:
        return top + (1 - (v - lo) / (hi - lo)) * plot_h

    parts = [
        f'<svg class="plot series" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">',
        f'<text x="4" y="16" class="title">{escape(title)}</text>',
    ]
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(f'<path class="grid" d="M{left} {y(tick):.1f}H{WIDTH - right}"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="tick">{tick:g}</text>')
    for moment in alerts:
        t = _time(moment)
        if t0 <= t <= t1:
            parts.append(
                f'<path class="alert" d="M{x(t):.1f} {top}V{top + plot_h}"><title>alert {escape(moment)}</title></path>'
            )
    path = "".join(
        f"{'M' if i == 0 else 'L'}{x(t):.1f} {y(v):.1f}" for i, (t, v) in enumerate(zip(times, values, strict=True))
    )
    parts.append(f'<path class="line" d="{path}"/>')
    for p, t, v in zip(shown, times, values, strict=True):
        label = f"{p['window_start'][:16]}: {v:.3f} (n={p.get('n')})"
        if p.get("drop"):
            cx, cy = x(t), y(v)
            parts.append(
                f'<path class="drop" d="M{cx:.1f} {cy - 6:.1f}L{cx + 6:.1f} {cy:.1f}L{cx:.1f} {cy + 6:.1f}'
                f'L{cx - 6:.1f} {cy:.1f}Z"><title>{escape(label)}: significant drop</title></path>'
            )
        else:
            parts.append(
                f'<circle class="dot" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3"><title>{escape(label)}</title></circle>'
            )
    for t, anchor in ((t0, "start"), (t1, "end")) if t1 > t0 else ((t0, "middle"),):
        stamp = datetime.fromtimestamp(t, timezone.utc).strftime("%m-%d %H:%M")
        parts.append(f'<text x="{x(t):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" class="tick">{stamp}</text>')
    parts.append("</svg>")
    return "".join(parts)
