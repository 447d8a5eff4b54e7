"""Small, dependency-free SVG charts, inlined into reports (no network, no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any

WIDTH = 640


def bars(
    title: str, rows: list[tuple[str, float, float]], *, lo: float = 0.0, hi: float = 1.0, zero_line: bool = False
) -> str:
    """Horizontal bars with error bars: rows of (label, value, half-width of the error bar)."""
    if not rows:
        return ""
    label_w, bar_h, gap, top = 220, 16, 6, 28
    height = top + len(rows) * (bar_h + gap) + 24
    plot_w = WIDTH - label_w - 60

    def x(v: float) -> float:
        return label_w + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg class="plot" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">',
        f'<text x="4" y="16" class="title">{escape(title)}</text>',
    ]
    origin = x(0.0 if zero_line else lo)
    for i, (label, value, err) in enumerate(rows):
        y = top + i * (bar_h + gap)
        start, end = sorted((origin, x(value)))
        colour = "neg" if value < 0 else "pos"
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect class="{colour}" x="{start:.1f}" y="{y}" width="{max(end - start, 1):.1f}" '
            f'height="{bar_h}"><title>{escape(label)}: {value:.3f} ± {err:.3f}</title></rect>'
        )
        if err > 0:
            a, b = x(value - err), x(value + err)
            mid = y + bar_h / 2
            parts.append(
                f'<path class="err" d="M{a:.1f} {mid}H{b:.1f}M{a:.1f} {mid - 4}V{mid + 4}'
                f'M{b:.1f} {mid - 4}V{mid + 4}"/>'
            )
        parts.append(f'<text x="{WIDTH - 50}" y="{y + 12}">{value:.3f}</text>')
    axis_y = top + len(rows) * (bar_h + gap) + 4
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{x(tick):.1f}" y="{axis_y + 14}" text-anchor="middle" class="tick">{tick:g}</text>')
    if zero_line:
        parts.append(f'<path class="zero" d="M{origin:.1f} {top - 4}V{axis_y}"/>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, values: list[float], *, bins: int = 20, lo: float = -0.5, hi: float = 1.0) -> str:
    if not values:
        return ""
    counts = [0] * bins
    for v in values:
        index = int((min(max(v, lo), hi) - lo) / (hi - lo) * bins)
        counts[min(index, bins - 1)] += 1
    height, top, bottom, left = 200, 28, 24, 40
    plot_h, plot_w = height - top - bottom, WIDTH - left - 10
    peak = max(counts) or 1
    width = plot_w / bins
    parts = [
        f'<svg class="plot" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">',
        f'<text x="4" y="16" class="title">{escape(title)}</text>',
    ]
    for i, count in enumerate(counts):
        h = count / peak * plot_h
        start = lo + (hi - lo) * i / bins
        parts.append(
            f'<rect class="pos" x="{left + i * width + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{width - 2:.1f}" height="{h:.1f}"><title>{start:.2f}..{start + (hi - lo) / bins:.2f}: '
            f"{count}</title></rect>"
        )
    for tick in (lo, 0.0, 0.5, hi):
        tx = left + (tick - lo) / (hi - lo) * plot_w
        parts.append(f'<text x="{tx:.1f}" y="{height - 6}" text-anchor="middle" class="tick">{tick:g}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" class="tick">{peak}</text></svg>')
    return "".join(parts)


def reliability(title: str, bins: Sequence[dict[str, Any]], figures: dict[str, Any]) -> str:
    """A reliability diagram: per confidence bin, accuracy (a bar over the bin's range) against the
    diagonal of perfect calibration, a dot at the bin's mean confidence; the figures as a caption."""
    if not bins:
        return ""
    size, left, top, bottom = 260, 44, 28, 40
    height = top + size + bottom + 18 * 3

    def x(v: float) -> float:
        return left + v * size

    def y(v: float) -> float:
        return top + (1 - v) * size

    parts = [
        f'<svg class="plot reliability" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">',
        f'<text x="4" y="16" class="title">{escape(title)}</text>',
        f'<path class="grid" d="M{x(0)} {y(0)}H{x(1)}M{x(0)} {y(0)}V{y(1)}"/>',
        f'<path class="zero" d="M{x(0)} {y(0)}L{x(1)} {y(1)}"/>',  # perfect calibration
    ]
    for b in bins:
        label = (
            f"confidence {b['low']:.2f}..{b['high']:.2f}: n={b['n']}, mean confidence {b['confidence']:.3f}, "
            f"accuracy {b['accuracy']:.3f}"
        )
        parts.append(
            f'<rect class="pos" x="{x(b["low"]) + 1:.1f}" y="{y(b["accuracy"]):.1f}" '
            f'width="{(b["high"] - b["low"]) * size - 2:.1f}" height="{b["accuracy"] * size:.1f}">'
            f"<title>{escape(label)}</title></rect>"
        )
        parts.append(f'<circle class="dot" cx="{x(b["confidence"]):.1f}" cy="{y(b["accuracy"]):.1f}" r="3"/>')
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{x(tick):.1f}" y="{y(0) + 14}" text-anchor="middle" class="tick">{tick:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="tick">{tick:g}</text>')
    parts.append(f'<text x="{x(0.5)}" y="{y(0) + 30}" text-anchor="middle" class="tick">confidence</text>')
    selective = figures.get("selective_accuracy") or {}

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [
        f"ECE (15 bins) {fmt(figures.get('ece'))} · adaptive ECE {fmt(figures.get('ece_adaptive'))}",
        f"Brier {fmt(figures.get('brier'))} · AUROC {fmt(figures.get('auroc'))}",
        "selective accuracy " + " · ".join(f"{float(k):.0%} {fmt(v)}" for k, v in selective.items()),
    ]
    for i, line in enumerate(lines):
        parts.append(f'<text x="{left}" y="{y(0) + 50 + 18 * i}" class="figures">{escape(line)}</text>')
    parts.append("</svg>")
    return "".join(parts)


SERIES_WIDTH, SERIES_HEIGHT = 640, 200


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def time_series(title: str, points: list[dict[str, Any]], alerts: Sequence[str] = ()) -> str:
    """A score over time, as inline SVG: points (``window_start``, ``value``, ``drop``) as a line
    with dots, a drop as a red diamond; ``alerts`` (ISO times) as dashed vertical markers."""
    shown = [p for p in points if p.get("value") is not None]
    if not shown:
        return ""
    left, right, top, bottom = 44, 12, 28, 28
    plot_w, plot_h = SERIES_WIDTH - left - right, SERIES_HEIGHT - top - bottom
    times = [_timestamp(p["window_start"]) for p in shown]
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
        f'width="{SERIES_WIDTH}" height="{SERIES_HEIGHT}" viewBox="0 0 {SERIES_WIDTH} {SERIES_HEIGHT}">',
        f'<text x="4" y="16" class="title">{escape(title)}</text>',
    ]
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(f'<path class="grid" d="M{left} {y(tick):.1f}H{SERIES_WIDTH - right}"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="tick">{tick:g}</text>')
    for moment in alerts:
        t = _timestamp(moment)
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
        parts.append(f'<text x="{x(t):.1f}" y="{SERIES_HEIGHT - 8}" text-anchor="{anchor}" class="tick">{stamp}</text>')
    parts.append("</svg>")
    return "".join(parts)


def counterfactual_chart(block: dict[str, Any] | None) -> str:
    """Each counterfactual variant's accuracy (or score), attribute by attribute (``--counterfactual``)."""
    if not block:
        return ""
    metric = block.get("metric", "accuracy")
    rows = [
        (f"{attribute}={value}", v[metric], 0.0)
        for attribute in block.get("attributes", [])
        for value, v in block[attribute]["variants"].items()
        if v.get(metric) is not None
    ]
    return bars(f"Counterfactual variants: {metric} by variant", rows)
