"""Server-rendered SVG charts (no script, no external asset).  Every label is escaped."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 720
BAR_AREA = 180


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(data: Sequence[tuple[str, int]], *, title: str, x_label: str = "", y_label: str = "",
              label_every: int = 1, height: int = 280) -> Markup:
    """Vertical bars (calls by day, by hour), with a visible title and labelled axes."""
    n = max(1, len(data))
    top = max([v for _l, v in data] + [1])
    left, bottom = 56, 52
    plot_w = WIDTH - left - 10
    step = plot_w / n
    bar_w = max(1.0, step * 0.8)
    base = height - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text class="chart-title" x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-size="13" '
             f'font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="#888"/>',
             f'<line x1="{left}" y1="{base - BAR_AREA}" x2="{left}" y2="{base}" stroke="#888"/>',
             f'<text x="{left - 4}" y="{base - BAR_AREA + 4}" text-anchor="end" font-size="10">{top}</text>',
             f'<text x="{left - 4}" y="{base}" text-anchor="end" font-size="10">0</text>']
    if x_label:
        parts.append(f'<text class="chart-axis" x="{left + plot_w / 2:.0f}" y="{height - 8}" text-anchor="middle" '
                     f'font-size="11">{escape(x_label)}</text>')
    if y_label:
        mid = base - BAR_AREA / 2
        parts.append(f'<text class="chart-axis" x="14" y="{mid:.0f}" text-anchor="middle" font-size="11" '
                     f'transform="rotate(-90 14 {mid:.0f})">{escape(y_label)}</text>')
    for i, (label, value) in enumerate(data):
        h = BAR_AREA * value / top
        x = left + i * step + (step - bar_w) / 2
        y = base - h
        parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w)}" height="{_num(h)}" fill="#3b6ea5">'
                     f'<title>{escape(label)}: {value}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{_num(x + bar_w / 2)}" y="{base + 14}" text-anchor="middle" '
                         f'font-size="10">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbar_chart(data: Sequence[tuple[str, int]], *, title: str, x_label: str = "", y_label: str = "",
               row: int = 22) -> Markup:
    """Horizontal bars with their labels (records by issue), a visible title and labelled axes."""
    top = max([v for _l, v in data] + [1])
    label_w, right, head = 260, 60, 44
    plot_w = WIDTH - label_w - right
    height = max(row * len(data) + 10, 40) + head + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text class="chart-title" x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-size="13" '
             f'font-weight="bold">{escape(title)}</text>']
    if y_label:
        parts.append(f'<text class="chart-axis" x="{label_w - 6}" y="{head - 8}" text-anchor="end" font-size="11" '
                     f'font-style="italic">{escape(y_label)}</text>')
    if x_label:
        parts.append(f'<text class="chart-axis" x="{label_w + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle" '
                     f'font-size="11" font-style="italic">{escape(x_label)}</text>')
    for i, (label, value) in enumerate(data):
        y = head + i * row
        w = plot_w * value / top
        parts.append(f'<text x="{label_w - 6}" y="{y + row * 0.65:.1f}" text-anchor="end" font-size="11">'
                     f'{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{_num(w)}" height="{row - 6}" fill="#a5553b">'
                     f'<title>{escape(label)}: {value}</title></rect>')
        parts.append(f'<text x="{_num(label_w + w + 4)}" y="{y + row * 0.65:.1f}" font-size="11">{value}</text>')
    if not data:
        parts.append(f'<text x="10" y="{head + 16}" font-size="12">-</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
