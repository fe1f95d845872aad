"""Line charts of a monitoring metric with its thresholds, as SVG (pure: no database, no
JavaScript, nothing fetched). Used by the admin and the model card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

PALETTE = ("#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d")
MAX_SERIES = len(PALETTE)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def metric_chart(
    metric: str,
    segments: Mapping[str, Sequence[tuple[datetime, float]]],
    thresholds: Sequence[tuple[str, float]] = (),
    *,
    width: int = 640,
    height: int = 200,
) -> str:
    """One metric over time: a line per segment (at most seven, the rest named as left out),
    a dashed red line per threshold (label, value), the time span under the axis."""
    series = [(name, list(points)) for name, points in segments.items() if points]
    shown, hidden = series[:MAX_SERIES], len(series) - MAX_SERIES
    values = [v for _, pts in shown for _, v in pts] + [t for _, t in thresholds]
    times = [t.timestamp() for _, pts in shown for t, _ in pts]
    left, right, top, bottom = 56, 16, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, sans-serif" font-size="10">',
        f'<text x="{left}" y="14" font-size="12" font-weight="bold">{escape(metric[:80])}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#f8fafc" '
        'stroke="#cbd5e1"/>',
    ]
    if not values:
        parts.append(
            f'<text x="{left + 8}" y="{top + plot_h / 2}" fill="#6b7280">no points yet</text>'
        )
        return "".join(parts) + "</svg>"
    low, high = min(values), max(values)
    if high == low:
        low, high = low - (abs(low) or 1) * 0.1, high + (abs(high) or 1) * 0.1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    span = (t1 - t0) or 1.0

    def x(ts: float) -> float:
        return left + (ts - t0) / span * plot_w if t1 > t0 else left + plot_w / 2

    def y(v: float) -> float:
        return top + (high - v) / (high - low) * plot_h

    for v in (low + pad, (low + high) / 2, high - pad):
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + 3:.1f}" text-anchor="end" fill="#475569">'
            f"{_fmt(v)}</text>"
        )
    for label, value in thresholds:
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#dc2626" stroke-width="1.2" stroke-dasharray="5,3"/>'
            f'<text x="{left + 4}" y="{y(value) - 3:.1f}" fill="#dc2626">'
            f"{escape(label[:60])}</text>"
        )
    legend_x = left + 8 + len(metric[:80]) * 7
    for index, (name, points) in enumerate(shown):
        colour = PALETTE[index]
        coords = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in points)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
        )
        if len(points) == 1:
            ((t, v),) = points
            parts.append(
                f'<circle cx="{x(t.timestamp()):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>'
            )
        if name:
            parts.append(f'<text x="{legend_x}" y="14" fill="{colour}">{escape(name[:24])}</text>')
            legend_x += 12 + min(len(name), 24) * 6
    if hidden > 0:
        parts.append(f'<text x="{legend_x}" y="14" fill="#6b7280">+{hidden} more</text>')
    if times:
        start = min(t for _, pts in shown for t, _ in pts)
        end = max(t for _, pts in shown for t, _ in pts)
        parts.append(
            f'<text x="{left}" y="{height - 12}" fill="#475569">{start:%Y-%m-%d %H:%M}</text>'
            f'<text x="{left + plot_w}" y="{height - 12}" text-anchor="end" fill="#475569">'
            f"{end:%Y-%m-%d %H:%M} UTC</text>"
        )
    return "".join(parts) + "</svg>"


def series_chart(series: Mapping, **size) -> str:
    """The chart of one entry of `selectors.monitoring_series`."""
    thresholds = [
        (
            f"{r.get_comparator_display()} {r.threshold:g}"
            + (f" ({r.segment})" if r.segment else ""),
            r.threshold,
        )
        for r in series["rules"]
    ]
    return metric_chart(series["metric"], series["segments"], thresholds, **size)
