"""Small, dependency-free SVG charts, inlined into reports (no network, no JavaScript)."""

from __future__ import annotations

from html import escape

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
