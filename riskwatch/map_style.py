"""The one palette and legend of risk classes, shared by every map riskwatch draws.

The dashboard's map, the standalone HTML export (:mod:`riskwatch.offline_map`) and the PNG
export and e-mail thumbnails (:mod:`riskwatch.map_png`) all colour risk classes from here, so a
class looks the same everywhere a coordinator meets it.

The five classes use a sequential ColorBrewer "YlOrRd"-like ramp checked for the three common
colour-vision deficiencies (light yellow to dark red: the order stays readable by lightness
alone, without hue). ``insufficient_data`` is a neutral grey *with a hatch*, so that an area
without enough data is never mistaken for a low-risk one, even in greyscale print.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Risk classes from lowest to highest (CONTRACTS.md vocabulary), then the no-data class.
RISK_CLASSES: tuple[str, ...] = ("very_low", "low", "medium", "high", "very_high")
INSUFFICIENT_DATA = "insufficient_data"
ALL_CLASSES: tuple[str, ...] = (*RISK_CLASSES, INSUFFICIENT_DATA)

#: Fill colours (hex). Sequential and colour-blind safe; grey is reserved for missing data.
RISK_CLASS_COLOURS: dict[str, str] = {
    "very_low": "#ffffb2",
    "low": "#fecc5c",
    "medium": "#fd8d3c",
    "high": "#f03b20",
    "very_high": "#bd0026",
    INSUFFICIENT_DATA: "#bdbdbd",
}
#: Human labels for legends.
RISK_CLASS_LABELS: dict[str, str] = {
    "very_low": "Very low",
    "low": "Low",
    "medium": "Medium",
    "high": "High",
    "very_high": "Very high",
    INSUFFICIENT_DATA: "Insufficient data",
}
#: Classes drawn with a hatch pattern on top of their colour (matplotlib hatch, SVG pattern).
HATCHED_CLASSES: frozenset[str] = frozenset({INSUFFICIENT_DATA})
HATCH_COLOUR = "#636363"
MATPLOTLIB_HATCH = "///"

BOUNDARY_COLOUR = "#444444"
#: Outline of highlighted areas (e.g. the areas an alert is about).
HIGHLIGHT_COLOUR = "#1f78b4"
#: Text colour that stays readable on every fill (dark on light classes, white on dark ones).
LABEL_COLOURS: dict[str, str] = {
    "very_low": "#222222",
    "low": "#222222",
    "medium": "#222222",
    "high": "#ffffff",
    "very_high": "#ffffff",
    INSUFFICIENT_DATA: "#222222",
}


@dataclass(frozen=True)
class LegendEntry:
    """One row of a map legend."""

    risk_class: str
    label: str
    colour: str
    hatched: bool


def normalise_class(risk_class: str | None) -> str:
    """A known class name; anything unknown or missing counts as insufficient data.

    Missing data must never be drawn as low risk, so the fallback is the no-data class.
    """
    if risk_class in RISK_CLASS_COLOURS:
        return str(risk_class)
    return INSUFFICIENT_DATA


def class_colour(risk_class: str | None) -> str:
    """The fill colour of a risk class (grey for unknown or missing)."""
    return RISK_CLASS_COLOURS[normalise_class(risk_class)]


def legend_entries() -> list[LegendEntry]:
    """The legend rows, highest risk first, insufficient data last."""
    return [
        LegendEntry(
            name, RISK_CLASS_LABELS[name], RISK_CLASS_COLOURS[name], name in HATCHED_CLASSES
        )
        for name in (*reversed(RISK_CLASSES), INSUFFICIENT_DATA)
    ]


def svg_hatch_pattern(pattern_id: str = "rw-hatch") -> str:
    """An SVG ``<pattern>`` of diagonal lines over the no-data grey, for web maps."""
    grey = RISK_CLASS_COLOURS[INSUFFICIENT_DATA]
    return (
        f'<pattern id="{pattern_id}" patternUnits="userSpaceOnUse" width="6" height="6" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{grey}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{HATCH_COLOUR}" stroke-width="2"/></pattern>'
    )
