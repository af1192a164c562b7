"""`riskwatch indicators check|list|show`: the indicator catalog from the command line."""

from __future__ import annotations

from pathlib import Path

import click
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from riskwatch.catalog import (
    STANDARD_VARIABLES,
    Catalog,
    Indicator,
    check_catalog,
    describe_normalisation,
    describe_transform,
    read_catalog,
    variable_kind,
)
from riskwatch.clikit import app_context, console, error_console
from riskwatch.errors import RiskwatchError


@click.group("indicators")
def indicators() -> None:
    """The indicator catalog (the indicators_dir folder): check, list, show."""


@indicators.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.pass_context
def check(ctx: click.Context, directory: Path | None) -> None:
    """Check every indicator and profile file of DIRECTORY (default: the configured catalog).

    Prints one line per problem (file: key: message); exit code 1 when there is any.
    """
    settings = app_context(ctx).settings
    folder = directory or settings.resolved_indicators_dir
    problems = check_catalog(folder, extra_variables=settings.scoring.extra_variables)
    if problems:
        for problem in problems:
            console.print(str(problem), markup=False, highlight=False)
        error_console.print(f"{len(problems)} problem(s) in the catalog {folder}",
                            markup=False)
        ctx.exit(1)
    catalog, _ = read_catalog(folder, extra_variables=settings.scoring.extra_variables)
    console.print(
        f"Catalog {folder}: {len(catalog.indicators)} indicators and "
        f"{len(catalog.profiles)} profile(s) ({', '.join(sorted(catalog.profiles))}), "
        "no problems.",
        markup=False,
    )


def _catalog(ctx: click.Context) -> Catalog:
    """The configured catalog as far as it loads; problems are reported, not fatal."""
    settings = app_context(ctx).settings
    folder = settings.resolved_indicators_dir
    catalog, problems = read_catalog(folder, extra_variables=settings.scoring.extra_variables)
    if problems:
        error_console.print(
            f"warning: the catalog {folder} has {len(problems)} problem(s); files with errors "
            "are left out. Run `riskwatch indicators check` for the list.", markup=False,
        )
    return catalog


@indicators.command("list")
@click.pass_context
def list_indicators(ctx: click.Context) -> None:
    """List the indicators of the configured catalog."""
    catalog = _catalog(ctx)
    table = Table(title=f"Indicators in {catalog.directory}")
    for column in ("id", "dimension", "weight", "transform", "normalisation", "missing"):
        table.add_column(column, overflow="fold")
    for indicator in sorted(catalog.indicators.values(), key=lambda i: (i.dimension, i.id)):
        table.add_row(indicator.id, indicator.dimension, f"{indicator.weight:g}",
                      describe_transform(indicator), describe_normalisation(indicator),
                      indicator.missing)
    console.print(table)
    for name, profile in sorted(catalog.profiles.items()):
        dims = ", ".join(f"{d.id} x{d.weight:g}" for d in profile.dimensions)
        console.print(f"Profile {name}: {profile.aggregation} mean of {dims}; classes at "
                      f"{', '.join(f'{t:g}' for t in profile.classes.thresholds)}",
                      markup=False)


@indicators.command("show")
@click.argument("indicator_id")
@click.pass_context
def show(ctx: click.Context, indicator_id: str) -> None:
    """Show one indicator: definition, transform, normalisation, rationale and references."""
    catalog = _catalog(ctx)
    indicator = catalog.indicators.get(indicator_id)
    if indicator is None:
        known = ", ".join(sorted(catalog.indicators)) or "none"
        raise RiskwatchError(f"unknown indicator {indicator_id!r}; known: {known}")
    extra = app_context(ctx).settings.scoring.extra_variables
    console.print(_panel(indicator, catalog.indicator_paths[indicator_id], extra))


def _panel(indicator: Indicator, path: Path, extra_variables: list[str]) -> Panel:
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold")
    details.add_column(overflow="fold")

    def row(label: str, value: str) -> None:
        details.add_row(label, Text(value))

    row("name", indicator.name)
    row("description", indicator.description)
    row("dimension", indicator.dimension)
    row("weight", f"{indicator.weight:g} (within its dimension; a profile may override it)")
    row("direction", indicator.direction.replace("_", " "))
    inputs = []
    for name in indicator.inputs:
        kind = variable_kind(name, extra_variables)
        meaning = STANDARD_VARIABLES.get(name, (kind, ""))[1]
        label = kind.value if kind else "unknown variable"
        inputs.append(f"{name} ({label}: {meaning})" if meaning else f"{name} ({label})")
    row("inputs", "\n".join(inputs))
    row("transform", describe_transform(indicator))
    row("normalisation", describe_normalisation(indicator))
    row("min denominator", f"{indicator.min_denominator:g}")
    row("missing data", indicator.missing.replace("_", " "))
    if indicator.max_age_days:
        row("max age", f"{indicator.max_age_days} days")
    row("rationale", indicator.rationale.text)
    row("references", "\n".join(f"- {r}" for r in indicator.rationale.references))
    row("file", str(path))
    return Panel(details, title=Text(indicator.id), expand=False)


COMMANDS = [indicators]
