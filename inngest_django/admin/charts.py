"""Line charts as inline SVG, drawn in Python: no JavaScript, no library, no CDN."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 20, 28


@dataclass
class Series:
    """One line: its name (the legend), colour and a value per x label (None: no point)."""

    name: str
    colour: str
    values: list[float | None]


def nice_ceiling(value: float) -> float:
    """Return a round number at least `value` (1, 2, 5 times a power of ten), for the y axis."""
    if value <= 0:
        return 1.0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def number(value: float) -> str:
    """Return `value` short: 12, 1.5, 0.25."""
    return f"{value:.3g}"


def line_chart(
    title: str, labels: list[str], series: list[Series], *, unit: str = ""
) -> SafeString:
    """Return an <svg> chart of `series` over `labels`, with axes, a legend and point tooltips."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for line in series for v in line.values if v is not None]
    # Four gridline steps of a round size: 0, 1, 2, 3, 4 runs, not 0, 1.25, 2.5 ...
    top = 4 * nice_ceiling(max(values, default=0.0) / 4)
    count = max(len(labels), 1)

    def x(index: int) -> float:
        return LEFT + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / top

    parts = [
        format_html(
            '<svg class="inngest-chart" role="img" viewBox="0 0 {} {}" width="100%" '
            'preserveAspectRatio="xMidYMid meet" aria-label="{}"><title>{}</title>',
            WIDTH,
            HEIGHT,
            title,
            title,
        )
    ]
    for step in range(5):
        value = top * step / 4
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
                '<text x="{}" y="{}" font-size="10" text-anchor="end" fill="#666">{}{}</text>',
                LEFT,
                WIDTH - RIGHT,
                round(y(value), 1),
                round(y(value), 1),
                LEFT - 4,
                round(y(value) + 3, 1),
                number(value),
                unit,
            )
        )
    # About six time labels, whatever the window.
    every = max(count // 6, 1)
    for index, label in enumerate(labels):
        if index % every == 0 or index == count - 1:
            # The last label ends at the axis' end instead of running off the chart.
            anchor = "end" if index == count - 1 and count > 1 else "middle"
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10" text-anchor="{}" fill="#666">{}</text>',
                    round(x(index), 1),
                    HEIGHT - 10,
                    anchor,
                    label,
                )
            )
    for line in series:
        points = [
            (round(x(i), 1), round(y(v), 1), labels[i], v)
            for i, v in enumerate(line.values)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{px},{py}" for px, py, _, _ in points)
            parts.append(
                format_html(
                    '<polyline class="series" data-series="{}" fill="none" stroke="{}" '
                    'stroke-width="1.5" points="{}"/>',
                    line.name,
                    line.colour,
                    path,
                )
            )
        for px, py, label, value in points:
            parts.append(
                format_html(
                    '<circle class="point" data-series="{}" cx="{}" cy="{}" r="2" fill="{}">'
                    "<title>{} {}: {}{}</title></circle>",
                    line.name,
                    px,
                    py,
                    line.colour,
                    label,
                    line.name,
                    number(value),
                    unit,
                )
            )
    legend_x = LEFT
    for line in series:
        parts.append(
            format_html(
                '<rect x="{}" y="2" width="10" height="3" fill="{}"/>'
                '<text x="{}" y="9" font-size="10" fill="#333">{}</text>',
                legend_x,
                line.colour,
                legend_x + 14,
                line.name,
            )
        )
        legend_x += 14 + 7 * len(line.name) + 16
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(escape(p) if not hasattr(p, "__html__") else p for p in parts))
