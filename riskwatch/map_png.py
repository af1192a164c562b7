"""A map of risk classes as a PNG image, drawn on the server with matplotlib (no browser).

Used by ``riskwatch export ... --format png``, the dashboard's downloads and the e-mail
thumbnails of alerts. The image carries its legend, title and footer (attribution, licence
notes, sensitivity label) as drawn text, and the same texts as PNG text chunks, so that a
copied image keeps its provenance. Colours come from :mod:`riskwatch.map_style`.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from riskwatch.map_style import (
    BOUNDARY_COLOUR,
    HATCH_COLOUR,
    HIGHLIGHT_COLOUR,
    LABEL_COLOURS,
    MATPLOTLIB_HATCH,
    class_colour,
    legend_entries,
    normalise_class,
)

DPI = 100
#: Above this many areas only highlighted areas are labelled: more names are unreadable.
MAX_LABELLED_AREAS = 40
FOOTER_FONT_SIZE = 6.5
PNG_SOFTWARE = "riskwatch"


def _wrapped(text: str, width_px: int, font_size: float) -> str:
    # About 0.55 em per character for DejaVu Sans at this size.
    characters = max(30, int(width_px / (font_size * 0.62 * DPI / 72)))
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, characters) or [""]
    return "\n".join(lines)


def render_map_png(
    areas: Any,
    *,
    highlight: set[str] | frozenset[str] = frozenset(),
    title: str,
    footer: str,
    width_px: int = 800,
    height_px: int = 600,
    labels: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """PNG bytes of ``areas`` (a GeoDataFrame with pcode, name, geometry, risk_class).

    Areas are filled by risk class (insufficient data: grey and hatched, never a low-risk
    colour); ``highlight`` pcodes get a thick outline. ``footer`` (attribution, licence,
    sensitivity) is printed under the map and stored with ``title`` and ``metadata`` as PNG
    text chunks. Areas without a geometry are skipped. Thread-safe: no pyplot state.
    """
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    footer_text = _wrapped(footer, width_px, FOOTER_FONT_SIZE)
    footer_lines = footer_text.count("\n") + 1
    footer_height = min(0.45, (footer_lines * FOOTER_FONT_SIZE * 1.35 + 8) / 72 * DPI / height_px)
    title_height = 34 / height_px
    axes = figure.add_axes(
        (0.01, footer_height + 0.01, 0.74, 1 - footer_height - title_height - 0.02)
    )
    axes.set_axis_off()
    axes.set_aspect("equal")

    drawn = areas[areas.geometry.notna() & ~areas.geometry.is_empty] if len(areas) else areas
    highlighted = {str(pcode) for pcode in highlight}
    if len(drawn):
        classes = [normalise_class(value) for value in drawn["risk_class"].tolist()]
        drawn = drawn.assign(draw_class=classes)
        for risk_class, group in drawn.groupby("draw_class", sort=False):
            hatched = next(e.hatched for e in legend_entries() if e.risk_class == risk_class)
            group.plot(
                ax=axes,
                color=class_colour(str(risk_class)),
                edgecolor=HATCH_COLOUR if hatched else BOUNDARY_COLOUR,
                hatch=MATPLOTLIB_HATCH if hatched else None,
                linewidth=0.4,
            )
        if highlighted:
            marked = drawn[drawn["pcode"].astype(str).isin(highlighted)]
            if len(marked):
                marked.boundary.plot(ax=axes, color=HIGHLIGHT_COLOUR, linewidth=2.2)
        if labels:
            labelled = (
                drawn
                if len(drawn) <= MAX_LABELLED_AREAS
                else drawn[drawn["pcode"].astype(str).isin(highlighted)]
            )
            for row in labelled.itertuples():
                point = row.geometry.representative_point()
                axes.annotate(
                    str(row.name),
                    (point.x, point.y),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=LABEL_COLOURS[row.draw_class],
                )
    else:
        axes.text(
            0.5,
            0.5,
            "No areas with a boundary to draw",
            ha="center",
            va="center",
            transform=axes.transAxes,
            fontsize=11,
            color="#555555",
        )

    figure.text(0.01, 1 - 8 / height_px, title, ha="left", va="top", fontsize=12, fontweight="bold")
    handles = [
        Patch(
            facecolor=entry.colour,
            edgecolor=HATCH_COLOUR if entry.hatched else "#555555",
            hatch=MATPLOTLIB_HATCH if entry.hatched else None,
            label=entry.label,
        )
        for entry in legend_entries()
    ]
    if highlighted:
        handles.append(
            Patch(facecolor="none", edgecolor=HIGHLIGHT_COLOUR, linewidth=2, label="Alert area")
        )
    figure.legend(
        handles=handles,
        title="Risk class",
        loc="upper right",
        bbox_to_anchor=(0.99, 1 - title_height),
        fontsize=8,
        title_fontsize=9,
        frameon=False,
    )
    figure.text(
        0.01, 0.005, footer_text, ha="left", va="bottom", fontsize=FOOTER_FONT_SIZE, color="#333333"
    )

    text_chunks = {"Title": title, "Description": footer, "Software": PNG_SOFTWARE}
    text_chunks.update(metadata or {})
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata=text_chunks, facecolor="white")
    return buffer.getvalue()
