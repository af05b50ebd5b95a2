"""Charts as inline SVG, drawn in Python: the report is one file that opens in any browser with
no network, no script and nothing to install, and the same data gives the same bytes.

Every chart is an ``<svg class="chart">`` whose data marks carry ``class="mark"`` and a
``<title>`` (the browser shows it on hover), which is also what the report's browser test looks
for. Sizes are in user units with a ``viewBox``, so charts scale with the page.

Not Altair with vl-convert (weighed in issue 24): that would add 84 MB to install and about 2 s
to each report, and its static SVG drops the hover titles and lets point labels run into points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, sans-serif'"
INK = "#1f2a30"
MUTED = "#6b7780"
GRID = "#e3e7ea"

SEGMENT_COLOURS = {"Engaged": "#2a9d8f", "Swing": "#e9c46a", "Disengaged": "#e76f51"}
RISK_COLOURS = {"low": "#8ab17d", "medium": "#f4a261", "high": "#c1121f"}
GROUP_COLOURS = {"treatment": "#264653", "control": "#a8b3ba"}
ACCENT = "#3d5a80"


def _num(value: float) -> str:
    """Coordinates rounded to 0.1: small files, stable bytes."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text(x, y, content, size=12, anchor="start", colour=INK, weight="normal", extra="") -> str:
    return (
        f"<text x='{_num(x)}' y='{_num(y)}' font-size='{size}' text-anchor='{anchor}' "
        f"fill='{colour}' font-weight='{weight}' {FONT}{extra}>{escape(str(content))}</text>"
    )


def _rect(x, y, w, h, colour, tip: str, css="mark") -> str:
    return (
        f"<rect class='{css}' x='{_num(x)}' y='{_num(y)}' width='{_num(max(w, 0))}' "
        f"height='{_num(max(h, 0))}' fill='{colour}'><title>{escape(tip)}</title></rect>"
    )


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f"<svg class='chart' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
        f"width='100%' style='max-width:{width}px' role='img' aria-label='{escape(label)}'>"
        + "".join(body)
        + "</svg>"
    )


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for name, colour in items:
        out.append(
            f"<rect x='{_num(x)}' y='{_num(y - 9)}' width='10' height='10' fill='{colour}'/>"
        )
        out.append(_text(x + 14, y, name, size=11, colour=MUTED))
        x += 22 + 6.5 * len(name)
    return out


def stacked_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    label: str,
    percent: bool = True,
    value_name: str = "members",
    width: int = 640,
) -> str:
    """Horizontal bars, one per category, stacked by series (``(name, values, colour)``).

    With ``percent`` each bar is scaled to 100% of its category (tooltips give counts and shares).
    """
    left, right, top, row = 150, (20 if percent else 64), 34, 30
    height = top + row * len(categories) + 30
    plot = width - left - right
    totals = [sum(s[1][i] for s in series) for i in range(len(categories))]
    scale_max = 1.0 if percent else max(totals + [1])
    body = _legend([(name, colour) for name, _, colour in series], left, 16)
    for tick in nice_ticks(0, scale_max, 4 if percent else 5):
        x = left + plot * tick / scale_max
        if tick > scale_max + 1e-9:
            continue
        body.append(
            f"<line x1='{_num(x)}' x2='{_num(x)}' y1='{top - 4}' "
            f"y2='{top + row * len(categories)}' stroke='{GRID}'/>"
        )
        body.append(
            _text(
                x,
                top + row * len(categories) + 16,
                f"{tick:.0%}" if percent else f"{tick:,.0f}",
                size=10,
                anchor="middle",
                colour=MUTED,
            )
        )
    for i, category in enumerate(categories):
        y = top + i * row + 4
        body.append(_text(left - 8, y + 15, category, anchor="end"))
        x = left
        for name, values, colour in series:
            value = values[i]
            share = value / totals[i] if totals[i] else 0.0
            w = plot * (share if percent else value / scale_max)
            tip = f"{category} · {name}: {value:,.0f} {value_name} ({share:.0%})"
            body.append(_rect(x, y, w, row - 8, colour, tip))
            if percent and w > 34:
                body.append(
                    _text(
                        x + w / 2,
                        y + 15,
                        f"{share:.0%}",
                        size=10,
                        anchor="middle",
                        colour="#ffffff"
                        if colour not in ("#e9c46a", "#a8b3ba", "#8ab17d")
                        else INK,
                    )
                )
            x += w
        if not percent:
            body.append(_text(x + 6, y + 15, f"{totals[i]:,.0f}", size=11, colour=MUTED))
    return _svg(width, height, label, body)


def stacked_columns(
    periods: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    label: str,
    value_name: str = "responses",
    width: int = 720,
    height: int = 260,
) -> str:
    """100% stacked columns over time, one column per period."""
    left, right, top, bottom = 44, 12, 30, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(periods), 1)
    body = _legend([(name, colour) for name, _, colour in series], left, 16)
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        body.append(
            f"<line x1='{left}' x2='{width - right}' y1='{_num(y)}' y2='{_num(y)}' stroke='{GRID}'/>"
        )
        body.append(_text(left - 6, y + 4, f"{tick:.0%}", size=10, anchor="end", colour=MUTED))
    label_every = max(1, math.ceil(len(periods) / 12))
    for i, period in enumerate(periods):
        total = sum(s[1][i] for s in series)
        x = left + i * step + step * 0.12
        y = top + plot_h
        for name, values, colour in series:
            share = values[i] / total if total else 0.0
            h = plot_h * share
            y -= h
            tip = f"{period} · {name}: {values[i]:,.0f} {value_name} ({share:.0%} of {total:,.0f})"
            body.append(_rect(x, y, step * 0.76, h, colour, tip))
        if i % label_every == 0:
            body.append(
                _text(
                    x + step * 0.38,
                    top + plot_h + 14,
                    period,
                    size=10,
                    anchor="middle",
                    colour=MUTED,
                )
            )
    return _svg(width, height, label, body)


def _mix(colour: str, share: float) -> str:
    """``colour`` faded towards white by ``1 - share``."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    fade = lambda c: round(255 - (255 - c) * (0.12 + 0.88 * share))  # noqa: E731
    return f"#{fade(r):02x}{fade(g):02x}{fade(b):02x}"


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    counts: Sequence[Sequence[float]],
    label: str,
    row_title: str,
    column_title: str,
    width: int = 520,
) -> str:
    """A matrix of counts, shaded by each row's share (a transition matrix reads row by row)."""
    left, top, cell_h = 120, 56, 44
    cell_w = (width - left - 16) / max(len(columns), 1)
    height = top + cell_h * len(rows) + 16
    body = [
        _text(
            left + cell_w * len(columns) / 2,
            16,
            column_title,
            size=11,
            anchor="middle",
            colour=MUTED,
        ),
        _text(left - 8, top - 10, row_title, size=11, anchor="end", colour=MUTED),
    ]
    for j, column in enumerate(columns):
        body.append(_text(left + cell_w * (j + 0.5), top - 10, column, anchor="middle"))
    for i, row in enumerate(rows):
        total = sum(counts[i])
        y = top + i * cell_h
        body.append(_text(left - 8, y + cell_h / 2 + 4, row, anchor="end"))
        for j, column in enumerate(columns):
            value = counts[i][j]
            share = value / total if total else 0.0
            colour = _mix(ACCENT, share)
            tip = f"{row} → {column}: {value:,.0f} ({share:.0%} of {row})"
            body.append(_rect(left + j * cell_w + 1, y + 1, cell_w - 2, cell_h - 2, colour, tip))
            ink = "#ffffff" if share > 0.45 else INK
            body.append(
                _text(
                    left + (j + 0.5) * cell_w,
                    y + cell_h / 2 - 1,
                    f"{value:,.0f}",
                    anchor="middle",
                    colour=ink,
                    weight="bold",
                )
            )
            body.append(
                _text(
                    left + (j + 0.5) * cell_w,
                    y + cell_h / 2 + 13,
                    f"{share:.0%}",
                    size=10,
                    anchor="middle",
                    colour=ink,
                )
            )
    return _svg(width, height, label, body)


def horizontal_bars(
    labels: Sequence[str],
    values: Sequence[float],
    label: str,
    value_name: str = "members",
    colour: str = ACCENT,
    width: int = 720,
) -> str:
    """Plain horizontal bars with the value at the end (for ranked lists such as reasons)."""
    left, right, top, row = 330, 60, 8, 24
    height = top + row * len(labels) + 8
    peak = max(list(values) + [1])
    body = []
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        body.append(_text(left - 8, y + 14, _shorten(name, 52), size=11, anchor="end"))
        w = (width - left - right) * value / peak
        body.append(_rect(left, y + 3, w, row - 7, colour, f"{name}: {value:,.0f} {value_name}"))
        body.append(_text(left + w + 6, y + 14, f"{value:,.0f}", size=11, colour=MUTED))
    return _svg(width, height, label, body)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scatter_quadrants(
    points: Sequence[tuple[str, float, float]],
    label: str,
    x_title: str,
    y_title: str,
    width: int = 640,
    height: int = 400,
) -> str:
    """Importance (y) against performance (x), split at the means into four quadrants."""
    left, right, top, bottom = 60, 24, 20, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p[1] for p in points]
    ys = [p[2] for p in points]
    x_ticks = nice_ticks(max(0.0, min(xs) - 0.05), min(1.0, max(xs) + 0.05), 5)
    y_ticks = nice_ticks(0.0, max(ys) * 1.1 if ys else 1.0, 5)
    x0, x1, y1 = x_ticks[0], x_ticks[-1], y_ticks[-1]
    sx: Callable[[float], float] = lambda v: left + plot_w * (v - x0) / ((x1 - x0) or 1)  # noqa: E731
    sy: Callable[[float], float] = lambda v: top + plot_h * (1 - v / (y1 or 1))  # noqa: E731
    body = []
    for tick in x_ticks:
        body.append(
            f"<line x1='{_num(sx(tick))}' x2='{_num(sx(tick))}' y1='{top}' y2='{top + plot_h}' "
            f"stroke='{GRID}'/>"
        )
        body.append(
            _text(
                sx(tick), top + plot_h + 14, f"{tick:.0%}", size=10, anchor="middle", colour=MUTED
            )
        )
    for tick in y_ticks:
        body.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{_num(sy(tick))}' y2='{_num(sy(tick))}' "
            f"stroke='{GRID}'/>"
        )
        body.append(
            _text(left - 6, sy(tick) + 4, f"{tick:.0%}", size=10, anchor="end", colour=MUTED)
        )
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    dash = f"stroke='{MUTED}' stroke-dasharray='4 3'"
    body.append(
        f"<line x1='{_num(sx(mean_x))}' x2='{_num(sx(mean_x))}' y1='{top}' y2='{top + plot_h}' "
        f"{dash}/>"
    )
    body.append(
        f"<line x1='{left}' x2='{left + plot_w}' y1='{_num(sy(mean_y))}' y2='{_num(sy(mean_y))}' "
        f"{dash}/>"
    )
    body.append(
        _text(
            left + 6,
            top + 14,
            "Fix first: matters, done less well",
            size=11,
            colour="#c1121f",
            weight="bold",
        )
    )
    body.append(
        _text(
            left + plot_w - 6,
            top + 14,
            "Keep it up",
            size=11,
            anchor="end",
            colour="#2a9d8f",
            weight="bold",
        )
    )
    for name, x, y in points:
        body.append(
            f"<circle class='mark' cx='{_num(sx(x))}' cy='{_num(sy(y))}' r='6' fill='{ACCENT}' "
            f"fill-opacity='0.85'><title>{escape(name)}: performance {x:.0%}, importance "
            f"{y:.0%}</title></circle>"
        )
    body += _point_labels(
        [(n, sx(x), sy(y)) for n, x, y in points], left, left + plot_w, top, top + plot_h
    )
    body.append(
        _text(left + plot_w / 2, height - 8, x_title, size=11, anchor="middle", colour=MUTED)
    )
    body.append(
        _text(
            14,
            top + plot_h / 2,
            y_title,
            size=11,
            anchor="middle",
            colour=MUTED,
            extra=f" transform='rotate(-90 14 {_num(top + plot_h / 2)})'",
        )
    )
    return _svg(width, height, label, body)


def _point_labels(
    points: Sequence[tuple[str, float, float]],
    left_edge: float,
    right_edge: float,
    top: float,
    bottom: float,
) -> list[str]:
    """Labels beside their points, clear of every point and of each other.

    Each label takes the first free place: right or left of its point, then moved up or down by
    a line at a time (with a leader line back to the point); a box is free when it overlaps no
    point and no label placed before it, and stays inside the plot."""
    line, radius, gap = 13.0, 7.0, 9.0
    dots = [(px - radius, py - radius, px + radius, py + radius) for _, px, py in points]
    placed: list[tuple[float, float, float, float]] = []
    out = []

    def free(box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        inside = left_edge <= x0 and x1 <= right_edge and top <= y0 and y1 <= bottom + 16
        return inside and not any(
            x0 < o[2] and o[0] < x1 and y0 < o[3] and o[1] < y1 for o in dots + placed
        )

    for name, px, py in sorted(points, key=lambda p: (p[2], p[1])):
        width = 6.3 * len(name)
        candidates = [
            (shift, anchor)
            for step in range(12)
            for shift in ((0.0,) if step == 0 else (step * line, -step * line))
            for anchor in ("start", "end")
        ]
        shift, anchor = candidates[0]
        for shift, anchor in candidates:
            x_low = px + gap if anchor == "start" else px - gap - width
            y = py + 4 + shift
            if free((x_low, y - 10, x_low + width, y + 3)):
                break
        else:  # nowhere free: beside the point, as before
            shift, anchor = 0.0, "start" if px + gap + width <= right_edge else "end"
            x_low = px + gap if anchor == "start" else px - gap - width
            y = py + 4
        placed.append((x_low, y - 10, x_low + width, y + 3))
        if shift:
            end = x_low if anchor == "start" else x_low + width
            out.append(
                f"<line x1='{_num(px)}' y1='{_num(py)}' x2='{_num(end)}' y2='{_num(y - 4)}' "
                f"stroke='{MUTED}' stroke-width='0.6'/>"
            )
        x_text = x_low if anchor == "start" else x_low + width
        out.append(_text(x_text, y, name, size=11, anchor=anchor))
    return out


def forest(
    rows: Sequence[tuple[str, float, float, float]],
    label: str,
    x_title: str,
    fmt: Callable[[float], str],
    width: int = 640,
) -> str:
    """Point estimates with confidence intervals (``(name, estimate, low, high)``), around zero."""
    left, right, top, row = 190, 30, 12, 30
    height = top + row * len(rows) + 40
    plot = width - left - right
    low = min([r[2] for r in rows] + [0.0])
    high = max([r[3] for r in rows] + [0.0])
    pad = (high - low) * 0.08 or 1.0
    ticks = nice_ticks(low - pad, high + pad, 5)
    lo, hi = ticks[0], ticks[-1]
    sx = lambda v: left + plot * (v - lo) / ((hi - lo) or 1)  # noqa: E731
    body = []
    for tick in ticks:
        body.append(
            f"<line x1='{_num(sx(tick))}' x2='{_num(sx(tick))}' y1='{top}' "
            f"y2='{top + row * len(rows)}' stroke='{GRID}'/>"
        )
        body.append(
            _text(
                sx(tick),
                top + row * len(rows) + 14,
                fmt(tick),
                size=10,
                anchor="middle",
                colour=MUTED,
            )
        )
    body.append(
        f"<line x1='{_num(sx(0))}' x2='{_num(sx(0))}' y1='{top}' y2='{top + row * len(rows)}' "
        f"stroke='{INK}'/>"
    )
    for i, (name, estimate, ci_low, ci_high) in enumerate(rows):
        y = top + i * row + row / 2
        body.append(_text(left - 10, y + 4, name, size=11, anchor="end"))
        colour = "#2a9d8f" if ci_low > 0 else "#c1121f" if ci_high < 0 else ACCENT
        tip = f"{name}: {fmt(estimate)} (95% CI {fmt(ci_low)} to {fmt(ci_high)})"
        body.append(
            f"<line class='mark' x1='{_num(sx(ci_low))}' x2='{_num(sx(ci_high))}' y1='{_num(y)}' "
            f"y2='{_num(y)}' stroke='{colour}' stroke-width='3'><title>{escape(tip)}</title></line>"
        )
        body.append(
            f"<circle class='mark' cx='{_num(sx(estimate))}' cy='{_num(y)}' r='6' "
            f"fill='{colour}'><title>{escape(tip)}</title></circle>"
        )
    body.append(_text(left + plot / 2, height - 6, x_title, size=11, anchor="middle", colour=MUTED))
    return _svg(width, height, label, body)
