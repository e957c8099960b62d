"""Bar charts drawn as inline SVG on the server: no script, no library, no CDN; each bar has a title a screen
reader and a hovering pointer can read."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from weft.application.dashboard import DayCount, DeliveryBucket

WIDTH, HEIGHT, PAD = 720, 180, 24
SERIES = (("delivered", "#2f7d4f"), ("sent", "#7fb08f"), ("pending", "#c9b79c"), ("failed", "#b3261e"))


def overall_rate(buckets: Sequence[DeliveryBucket]) -> float | None:
    took = sum(b.sent + b.delivered for b in buckets)
    failed = sum(b.failed for b in buckets)
    return round(took / (took + failed), 4) if took + failed else None


def delivery_svg(buckets: Sequence[DeliveryBucket], hourly: bool) -> Markup:
    """Stacked bars per hour or day: delivered, sent (no report yet), pending, failed."""
    top = max((sum(getattr(b, name) for name, _ in SERIES) for b in buckets), default=0)
    bars = []
    for index, bucket in enumerate(buckets):
        label = bucket.start.strftime("%H:00" if hourly else "%b %d")
        counts = ", ".join(f"{getattr(bucket, name)} {name}" for name, _ in SERIES)
        y = float(HEIGHT - PAD)
        for name, colour in SERIES:
            height = _scale(getattr(bucket, name), top)
            y -= height
            if height:
                bars.append(_rect(index, len(buckets), y, height, colour, f"{label}: {counts}"))
    legend = " ".join(f'<tspan fill="{c}">■</tspan> {n}' for n, c in SERIES)
    return _svg(bars, f"{'Texts per hour, last 24 hours' if hourly else 'Texts per day, last 30 days'}", legend,
                top, _ends(buckets, hourly))


def days_svg(joins: Sequence[DayCount], opt_outs: Sequence[DayCount]) -> Markup:
    """Joins (up) and opt-outs (down, red) per day."""
    top = max([d.count for d in (*joins, *opt_outs)], default=0)
    bars = []
    for index, (join, out) in enumerate(zip(joins, opt_outs, strict=True)):
        label = join.day.strftime("%b %d")
        title = f"{label}: {join.count} joined, {out.count} opted out"
        half = (HEIGHT - PAD) / 2
        up, down = _scale(join.count, top) / 2, _scale(out.count, top) / 2
        if up:
            bars.append(_rect(index, len(joins), half - up, up, "#2f7d4f", title))
        if down:
            bars.append(_rect(index, len(joins), half, down, "#b3261e", title))
    legend = '<tspan fill="#2f7d4f">■</tspan> joined <tspan fill="#b3261e">■</tspan> opted out'
    ends = (joins[0].day.strftime("%b %d"), joins[-1].day.strftime("%b %d")) if joins else ("", "")
    return _svg(bars, "Joins and opt-outs per day, last 30 days", legend, top, ends)


def _scale(value: int, top: int) -> float:
    return 0.0 if not top or not value else max(1.0, value / top * (HEIGHT - 2 * PAD))


def _rect(index: int, count: int, y: float, height: float, colour: str, title: str) -> str:
    width = (WIDTH - 2 * PAD) / max(count, 1)
    x = PAD + index * width
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width - 1, 1):.1f}" height="{height:.1f}" '
            f'fill="{colour}"><title>{escape(title)}</title></rect>')


def _ends(buckets: Sequence[DeliveryBucket], hourly: bool) -> tuple[str, str]:
    if not buckets:
        return "", ""
    fmt = "%H:00" if hourly else "%b %d"
    return buckets[0].start.strftime(fmt), buckets[-1].start.strftime(fmt)


def _svg(bars: list[str], title: str, legend: str, top: int, ends: tuple[str, str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="none"><title>{escape(title)}</title>'
        f'<text x="{PAD}" y="14" class="chart-legend">{legend} (highest: {top})</text>'
        f'{"".join(bars)}'
        f'<text x="{PAD}" y="{HEIGHT - 6}" class="chart-axis">{escape(ends[0])}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" text-anchor="end" class="chart-axis">{escape(ends[1])}</text>'
        f'</svg>'
    )
