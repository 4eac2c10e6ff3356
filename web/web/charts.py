"""Charts for the reports, drawn on the server as SVG with pygal.

No JavaScript and nothing fetched from elsewhere: pygal's script is switched off, its comments
(which name its web site) are dropped, and the SVG travels inside the page as a ``data:`` image.
A suppressed figure is not drawn: its bar is missing, its label says "unterdrückt", and the
chart's title says how many were left out. The table under each chart holds the numbers.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pygal
from flask_babel import gettext as _
from flask_babel import ngettext
from pygal.style import Style

# Print-friendly: white ground, near-black text, dark fills that keep 4.5:1 against white and
# stay apart in greyscale.
PRINT_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1b1b1b",
    foreground_strong="#1b1b1b",
    foreground_subtle="#4a4a4a",
    opacity="1",
    opacity_hover="1",
    transition="none",
    colors=("#0a4a8f", "#a84300", "#185c2a", "#5b2a86"),
    font_family="'DejaVu Sans', Arial, sans-serif",
    title_font_size=18,
    label_font_size=14,
    major_label_font_size=14,
    legend_font_size=14,
    value_font_size=13,
    no_data_font_size=20,
)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# pygal writes its configuration into a <script> even without its JavaScript: not wanted.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
WIDTH = 860


@dataclass(frozen=True)
class Chart:
    """An SVG chart ready for ``<img src=… alt=…>``."""

    svg: str
    alt: str
    left_out: int

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode()).decode()


@dataclass(frozen=True)
class Bar:
    """One bar (or group of bars): its label and one value per series, ``None`` = suppressed."""

    label: str
    values: tuple[float | None, ...]


def _render(chart: pygal.graph.graph.Graph) -> str:
    svg = chart.render()
    svg = svg if isinstance(svg, str) else svg.decode()
    return _SCRIPT.sub("", _COMMENT.sub("", svg))


def horizontal_bars(title: str, bars: Sequence[Bar], series: Sequence[str], *,
                    formatter: Callable[[float], str], what: str) -> Chart | None:
    """A horizontal bar chart, one group per entry of ``bars`` and one bar per series; ``what``
    says in words what the bars show (for the alt text). ``None`` when there is nothing to draw:
    no bars, or every value suppressed."""
    # pygal draws a horizontal chart's first bar at the bottom; the table reads from the top.
    bars = list(reversed(bars))
    drawable = [value for bar in bars for value in bar.values if value is not None]
    if not drawable:
        return None
    left_out = sum(1 for bar in bars for value in bar.values if value is None)
    note = ""
    if left_out:
        note = ngettext("%(num)d unterdrückter Wert nicht gezeigt",
                        "%(num)d unterdrückte Werte nicht gezeigt", left_out)
    labels = []
    for bar in bars:
        hidden = [name for name, value in zip(series, bar.values, strict=True) if value is None]
        if not hidden:
            labels.append(bar.label)
        elif len(series) == 1 or len(hidden) == len(series):
            labels.append(_("%(label)s (unterdrückt)", label=bar.label))
        else:
            labels.append(_("%(label)s (%(series)s unterdrückt)", label=bar.label,
                            series=", ".join(hidden)))
    chart = pygal.HorizontalBar(
        js=[],
        disable_xml_declaration=True,
        no_prefix=False,
        style=PRINT_STYLE,
        width=WIDTH,
        height=140 + 34 * len(bars) * max(1, len(series)),
        title=f"{title}\n{note}" if note else title,
        x_labels=labels,
        truncate_label=-1,
        truncate_legend=-1,
        show_legend=len(series) > 1,
        legend_at_bottom=True,
        print_values=True,
        # After the bar's end, dark on white: legible in print and at any bar length.
        print_values_position="top",
        value_formatter=lambda value: "" if value is None else formatter(value),
        include_x_axis=True,
        margin=16,
        margin_right=56,
    )
    for index, name in enumerate(series):
        chart.add(name, [bar.values[index] for bar in bars])
    alt = _("Balkendiagramm: %(what)s.", what=what)
    if left_out:
        alt += " " + ngettext(
            "%(num)d unterdrückter Wert ist nicht gezeigt.",
            "%(num)d unterdrückte Werte sind nicht gezeigt.", left_out)
    alt += " " + _("Die Zahlen stehen in der Tabelle darunter.")
    return Chart(svg=_render(chart), alt=alt, left_out=left_out)
