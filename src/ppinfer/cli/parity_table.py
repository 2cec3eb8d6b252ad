"""``predict --engine all``'s table for people: one row per engine (top-1, build and warm
times, the largest score difference to the reference engine). Below 80 columns the table would
cut or break its cells (at 60 the top-1 column vanished whole; at 72 "analysis" broke in two),
so each engine becomes two short lines instead."""

from __future__ import annotations

import click

NARROW = 80  # columns below which the table gives way to lines


def print_parity(report, source) -> None:
    """Print ``report`` (a :class:`ppinfer.engines.parity.ParityReport`) for ``source``."""
    from ppinfer.pipeline.output import console as Console  # noqa: N812
    from ppinfer.pipeline.output import control_escaped

    console = Console()
    several = max((len(run.results) for run in report.runs), default=0) > 1
    rows = [_cells(report, run, several) for run in report.runs]
    title = control_escaped(source.display_name)  # plain text: the table escapes markup
    if console.width < NARROW:
        _print_lines(console, title, report, rows, several)
    else:
        _print_table(console, title, report, rows, several)
    for run in report.runs:
        if run.skipped:
            click.echo(control_escaped(f"{run.engine} skipped: {run.skipped}"), err=True)
    for result in report.errors:
        shown = result.to_json_dict()
        click.echo(control_escaped(f"{shown['file_name']}: {shown['error']}"), err=True)


def _cells(report, run, several: bool) -> dict | None:
    """One engine's figures as plain text (None for an engine that was skipped)."""
    from ppinfer.pipeline.output import control_escaped

    if run.skipped:
        return None
    first = run.results[0]
    top1 = (f"{first.class_ids[0]} {control_escaped(first.label_names[0])}"
            if not several else f"{run.top1_agree} of {len(run.results)} images")
    diff = "" if run.max_abs_diff is None else f"{run.max_abs_diff:.2e}"
    return {"top1": top1, "build": f"{run.build_seconds:.2f}", "warm": f"{run.ms_per_image:.2f}",
            "diff": diff, "bad": run in report.disagreeing,
            "top1_differs": run.top1_share < 1.0 and not several}


def _print_table(console, title: str, report, rows, several: bool) -> None:
    from rich.markup import escape
    from rich.table import Column, Table

    top1_header = f"top-1 same as {report.reference}" if several else "top-1"
    # Names and figures never wrap (a wrapped cell reads as another row); top-1 folds.
    table = Table(Column("engine", no_wrap=True), Column("prec", no_wrap=True),
                  Column(top1_header, overflow="fold"),
                  Column("build\ns", justify="right", no_wrap=True),
                  Column("ms/img\nwarm", justify="right", no_wrap=True),
                  Column(f"max |Δ| vs\n{report.reference or 'reference'} "
                         f"{report.reference_precision}", no_wrap=True),
                  title=escape(title))
    for run, cells in zip(report.runs, rows):
        if cells is None:  # the reason goes below the table, whole (an install hint)
            table.add_row(run.engine, run.precision, "[dim]skipped[/dim]", "", "", "")
            continue
        shown = cells["diff"] + (" [red]✗[/red]" if cells["bad"] else "")
        if cells["top1_differs"]:
            shown += " top-1 differs"
        table.add_row(run.engine, run.precision, escape(cells["top1"]), cells["build"],
                      cells["warm"], shown)
    console.print(table)


def _print_lines(console, title: str, report, rows, several: bool) -> None:
    """Each engine in two short lines: its top-1, then its figures."""
    from rich.text import Text

    console.print(Text(title, style="bold"))
    console.print(Text(f"|Δ|: largest score difference from {report.reference or 'the reference'}"
                       f" {report.reference_precision}", style="dim"))
    for run, cells in zip(report.runs, rows):
        line = Text(f"{run.engine} {run.precision}: ", style="bold")
        if cells is None:
            console.print(line.append("skipped", style="dim"))
            continue
        line.append(f"top-1 same as {report.reference} on {cells['top1']}" if several
                    else f"top-1 {cells['top1']}")
        figures = Text(f"  build {cells['build']} s, {cells['warm']} ms/img warm, "
                       f"|Δ| {cells['diff']}")
        if cells["bad"]:
            figures.append(" ✗", style="red")
        if cells["top1_differs"]:
            figures.append(" top-1 differs")
        console.print(line)
        console.print(figures)
