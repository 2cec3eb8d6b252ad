"""The bench table: every figure in one table when it fits the terminal, else (a narrow
terminal, long names) one block of small tables per model. Names are never cut; ``--json``
always has every figure.

Blocks: speed (latency, throughput, ratio, top-1 agreement), startup and memory (build, first
run, peak RSS) and, with ``--end-to-end``, the end-to-end figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ppinfer.bench.run import BenchReport, CaseResult, float_models

WIDE = 120
"""Width for output that is not a terminal (a file, a pipe) without $COLUMNS."""


def _f(value: float | None, fmt: str = ".1f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{suffix}"


def configuration(r: CaseResult) -> str:
    """``fp32 b8 t2``: precision, batch size, math-library threads."""
    threads = "" if r.cpu_threads is None else f" t{r.cpu_threads}"
    return f"{r.case.precision} b{r.case.batch_size}{threads}"


def _speed(r: CaseResult) -> list[str]:
    m = r.measurement
    s = m.engine.stats
    return [_f(s.mean_ms) + (" !" if s.unstable else ""), _f(s.p50_ms), _f(s.p99_ms),
            _f(m.engine.throughput), _f(r.ratio, ".2f", "x")]


def _agreement(r: CaseResult) -> list[str]:
    """Top-1 agreement with fp32 and the largest score difference, side by side."""
    if r.top1_vs_fp32 is None:
        return ["-", "-"]
    if r.case.precision == "fp32":
        return ["ref", "-"]
    return [_f(100 * r.top1_vs_fp32, ".0f", "%"), _f(r.score_diff_vs_fp32, ".3f")]


def _startup(r: CaseResult) -> list[str]:
    m = r.measurement
    return [_f(m.build_s, ".2f"), _f(m.first_run_ms)]


def _memory(r: CaseResult) -> list[str]:
    return [_f(r.measurement.peak_rss_mb, ".0f")]


def _end_to_end(r: CaseResult) -> list[str]:
    m, p = r.measurement, r.measurement.end_to_end
    if p is None:
        return ["-", "-", "-"]
    vs_engine = p.throughput / m.engine.throughput if m.engine.throughput else None
    stages = "/".join(_f(p.stages_ms[k]) for k in ("preprocess", "inference", "postprocess"))
    return [_f(p.throughput) + (" !" if p.stats.unstable else ""), _f(vs_engine, ".2f"), stages]


Cells = Callable[[CaseResult], list[str]]
SPEED = (("mean\nms", "p50\nms", "p99\nms", "img/s", "x\nbase"), _speed)
AGREEMENT = (("top-1\n=fp32", "max Δ\nvs fp32"), _agreement)
STARTUP = (("build\ns", "first\nms"), _startup)
MEMORY = (("RSS\nMB",), _memory)
END_TO_END = (("e2e\nimg/s", "e2e/\nengine", "pre/inf/post\nms"), _end_to_end)


def _table(leading: Sequence[str], groups: Sequence[tuple[Sequence[str], Cells]], **kw):
    from rich import box
    from rich.table import Column, Table

    columns = [Column(name, no_wrap=True) for name in leading]  # names: never cut
    columns += [Column(h, justify="right", overflow="fold") for headers, _ in groups
                for h in headers]
    return Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, **kw)


def full_table(report: BenchReport, measured: Sequence[CaseResult]):
    """Every figure, one row per configuration (a model column only when there are several)."""
    models = list(dict.fromkeys(r.case.model for r in measured))
    e2e = any(r.measurement.end_to_end for r in measured)
    groups = [STARTUP, SPEED, *([END_TO_END] if e2e else []), AGREEMENT, MEMORY]
    leading = (["model"] if len(models) > 1 else []) + ["engine", "prec", "batch", "thr"]
    table = _table(leading, groups, title=_title(report, models, measured))
    for r in measured:
        row = [r.case.model] if len(models) > 1 else []
        row += [r.case.engine, r.case.precision, str(r.case.batch_size), str(r.cpu_threads)]
        for _, cells in groups:
            row += cells(r)
        table.add_row(*row)
    return table


def _title(report: BenchReport, models: Sequence[str], measured: Sequence[CaseResult]) -> str:
    base_engine, base_precision = report.settings.resolved_baseline()
    head = f"{models[0]}: " if len(models) == 1 else ""
    if not any(r.ratio is not None for r in measured):  # e.g. an int8 model: no fp32 rows
        return (f"{head}no ratios: no {base_engine} {base_precision} row ran (--baseline "
                "names one); latency per batch")
    paired = " (int8 models: their float model's row)" if float_models(report.models) else ""
    return f"{head}ratios to {base_engine} {base_precision}{paired}; latency per batch"


def blocks(report: BenchReport, measured: Sequence[CaseResult], width: int = WIDE) -> list:
    """Per model: its name, then one small table per block, engine and configuration leading;
    a block wider than ``width`` is split into one table per group of columns, so no cell
    wraps (a row would read as two)."""
    e2e = any(r.measurement.end_to_end for r in measured)
    sections = [("speed (latency per batch)", [SPEED, AGREEMENT]),
                ("startup and memory", [STARTUP, MEMORY])]
    if e2e:
        sections.append(("end-to-end", [END_TO_END]))
    base_engine, base_precision = report.settings.resolved_baseline()
    paired = (" (int8 models: their float model's row; their top-1 =fp32 is to its fp32 on "
              "their engine)") if float_models(report.models) else ""
    out: list = [f"Ratios (x base) are to {base_engine} {base_precision}{paired}; ! marks an "
                 "unstable measurement; a wider terminal shows one table, --json FILE every "
                 "figure."]
    for model in dict.fromkeys(r.case.model for r in measured):
        out.append(f"\n[bold]{model}[/bold]")
        rows = [r for r in measured if r.case.model == model]
        for title, groups in sections:
            for i, part in enumerate(_fitting(list(groups), rows, width)):
                out.append(_block(title if i == 0 else "", part, rows))
    return out


def _fitting(groups: list, rows: Sequence[CaseResult], width: int) -> list[list]:
    """``groups`` as one table when it fits ``width``, else split: by group, then a group's
    own columns in halves, until each part fits or is a single column."""
    if natural_width(_block("", groups, rows)) <= width:
        return [groups]
    if len(groups) > 1:
        return [part for group in groups for part in _fitting([group], rows, width)]
    (headers, cells), = groups
    if len(headers) == 1:
        return [groups]
    half = len(headers) // 2
    left = (headers[:half], lambda r, cells=cells, half=half: cells(r)[:half])
    right = (headers[half:], lambda r, cells=cells, half=half: cells(r)[half:])
    return _fitting([left], rows, width) + _fitting([right], rows, width)


def _block(title: str, groups: Sequence[tuple[Sequence[str], Cells]],
           rows: Sequence[CaseResult]):
    table = _table(["engine", "config"], groups, title=title or None, title_justify="left")
    for r in rows:
        table.add_row(r.case.engine, configuration(r),
                      *(c for _, cells in groups for c in cells(r)))
    return table


def natural_width(renderable) -> int:
    """Columns ``renderable`` takes when nothing in it has to wrap."""
    import io

    from rich.console import Console
    from rich.segment import Segment

    roomy = Console(width=1000, file=io.StringIO())
    lines = roomy.render_lines(renderable, roomy.options, pad=False)
    return max((Segment.get_line_length(line) for line in lines), default=0)


def print_bench_table(report: BenchReport, console) -> None:
    measured = [r for r in report.results if r.measurement is not None]
    if not measured:
        return
    table = full_table(report, measured)
    if natural_width(table) <= console.width:
        console.print(table)
        return
    for part in blocks(report, measured, console.width):
        console.print(part, highlight=False)
