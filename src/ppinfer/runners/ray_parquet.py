"""``--save NAME.parquet`` on Ray: the workers write Parquet through Ray Data.

Ray writes a directory of part files (readable as one table by pandas, pyarrow, Spark, Ray).
It is written as a hidden sibling and swapped into place when complete, so an interrupted run
leaves the earlier output as it was, never a mix. Rows hold the results columns (``index`` is
the input position: sort by it for input order) and per-row diagnostics (``worker``,
``build_seconds``, stage seconds).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from ppinfer.config import RunConfig
from ppinfer.errors import OutputError
from ppinfer.modelfiles.source import ModelSource
from ppinfer.pipeline.decode import DEFAULT_MAX_PIXELS
from ppinfer.pipeline.inputs import InputItem
from ppinfer.pipeline.postprocess import Result
from ppinfer.runners.ray_runner import (
    RayOptions,
    RayRunReport,
    planned_dataset,
    row_to_result,
    unwrap_ray_errors,
)
from ppinfer.runners.ray_stages import RESULT_COLUMNS

MIN_ROWS_PER_FILE = 100_000  # results are small: few large files, not one per batch


def predict_to_parquet(source: ModelSource, config: RunConfig, items: Sequence[InputItem],
                       path: str, *, engine: str | type = "analysis",
                       options: RayOptions = RayOptions(), cpu_threads: int | None = None,
                       max_pixels: int = DEFAULT_MAX_PIXELS,
                       progress: bool = False) -> RayRunReport:
    """Predict ``items`` on Ray and write the results to the Parquet directory ``path``."""
    from ppinfer.io.publish import make_temp_dir, swap_into_place, sync_dir

    output = Path(path)
    check_parquet_output(path)
    report = RayRunReport()
    with planned_dataset(source, config, items, engine, options, cpu_threads, max_pixels,
                         report) as ds:
        ds.context.enable_progress_bars = progress  # Ray's bars: rows done and rows/s
        try:
            tmp = make_temp_dir(output.absolute())
        except OSError as exc:
            raise OutputError(f"Cannot write the --save directory {path}: "
                              f"{exc.strerror or exc}.") from None
        try:
            with unwrap_ray_errors():
                ds.write_parquet(str(tmp), min_rows_per_file=MIN_ROWS_PER_FILE)
            _summarize(tmp, report)
            sync_dir(tmp)
            swap_into_place(tmp, output.absolute())
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return report


def check_parquet_output(path: str) -> None:
    """Refuse (OutputError) a ``--save NAME.parquet`` that a run must not replace: a file, or a
    folder holding anything but Parquet part files. A folder of part files alone, such as the
    output of an earlier run, is replaced whole when the new one is complete: a run can be
    repeated onto its own output."""
    output = Path(path)
    if output.is_symlink() or (output.exists() and not output.is_dir()):
        raise OutputError(f"--save {path} is a file, and Parquet output is a directory of part "
                          "files: remove it or choose another name.")
    if not output.is_dir():
        return
    try:
        others = sorted(entry.name + ("/" if entry.is_dir() else "")
                        for entry in os.scandir(output)
                        if not (entry.name.endswith(".parquet")
                                and entry.is_file(follow_symlinks=False)))
    except OSError as exc:
        raise OutputError(f"Cannot read the --save directory {path}: "
                          f"{exc.strerror or exc}.") from None
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise OutputError(f"--save {path} is a directory that holds more than Parquet part files "
                          f"({shown}), so it is not replaced: choose another name, or empty "
                          "it yourself.")


def _summarize(directory: Path, report: RayRunReport) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(directory, columns=["error", "worker", "build_seconds"])
    report.errors = table.num_rows - table.column("error").null_count
    for worker, seconds in zip(table.column("worker").to_pylist(),
                               table.column("build_seconds").to_pylist()):
        report.build_seconds[worker] = seconds


def read_results(path: str | Path) -> Iterator[Result]:
    """The results of a Parquet directory written by :func:`predict_to_parquet`, in input
    order."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=list(RESULT_COLUMNS)).sort_by("index")
    for batch in table.to_batches():
        yield from (row_to_result(row) for row in batch.to_pylist())
