"""How results reach the user: a rich table, JSON lines, a --save file written line by line."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from typing import IO

from ppinfer.errors import OutputError
from ppinfer.pipeline.postprocess import Result

# Show a progress bar only when there is enough to wait for.
PROGRESS_MIN_ITEMS = 16


class ResultWriter:
    """Writes each result as it arrives; a table is printed at the end.

    ``--save`` lines are flushed one by one, so an interrupted run keeps every finished line.
    The file is opened on entry (a bad path fails before any work) but emptied only when the
    first result arrives: a run that fails while setting up leaves an earlier file as it was.
    """

    def __init__(self, as_json: bool = False, save_file: str | None = None, total: int = 0,
                 stream: IO[str] | None = None) -> None:
        self.as_json = as_json
        self.save_file = save_file
        self.total = total
        self.stream = stream
        self.rows: list[Result] = []
        self._save: IO[str] | None = None
        self._saved_lines = 0
        self._save_existed = False
        self._save_is_file = False  # a regular file (not /dev/stderr, a pipe, ...)
        self._progress = None
        self._task = None

    def __enter__(self) -> ResultWriter:
        if self.save_file:
            self._save_existed = os.path.exists(self.save_file)
            try:
                # Append mode: checks the path without truncating; see write().
                self._save = open(self.save_file, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise OutputError(
                    f"Cannot write the --save file {self.save_file}: {exc.strerror or exc}."
                ) from None
            self._save_is_file = stat.S_ISREG(os.fstat(self._save.fileno()).st_mode)
        if self.total >= PROGRESS_MIN_ITEMS and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import MofNCompleteColumn, Progress

            self._progress = Progress(*Progress.get_default_columns(), MofNCompleteColumn(),
                                      _images_per_second(), console=Console(stderr=True),
                                      transient=True)
            self._progress.start()
            self._task = self._progress.add_task("predicting", total=self.total)
        return self

    def write(self, result: Result) -> None:
        line = result.to_json_line()
        if self._save is not None:
            self._save_line(line)
        if self.as_json:
            out = self.stream or sys.stdout
            out.write(line + "\n")
            out.flush()
        else:
            self.rows.append(result)

    def _save_line(self, line: str) -> None:
        try:
            if self._saved_lines == 0 and self._save_is_file:
                self._save.truncate(0)  # the first result replaces an earlier file
            self._save.write(line + "\n")
            self._save.flush()
        except OSError as exc:
            raise OutputError(
                f"Cannot write to the --save file {self.save_file}: {exc.strerror or exc}."
            ) from None
        self._saved_lines += 1

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._save is not None:
            self._save.close()
            if self._saved_lines == 0 and not self._save_existed:
                with contextlib.suppress(OSError):
                    os.remove(self.save_file)  # created on entry, nothing to keep
        if not self.as_json and self.rows:
            self._print_table()

    def _print_table(self) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Column, Table

        # Long paths wrap rather than being cut: the file name is the part that matters.
        table = Table(Column("image", overflow="fold"), "class", "score", "label")
        for result in self.rows:
            shown = result.to_json_dict()  # printable names and messages
            name = escape(shown["file_name"])  # a name like photo[bold].jpg is not markup
            if result.error is not None:
                table.add_row(name, "-", "-", f"[red]error: {escape(shown['error'])}[/red]")
                continue
            for rank, (cid, score, label) in enumerate(
                zip(result.class_ids, result.scores, shown["label_names"])
            ):
                table.add_row(name if rank == 0 else "", str(cid), f"{score:.4f}",
                              escape(label), end_section=rank == len(result.class_ids) - 1)
        Console(file=self.stream or sys.stdout).print(table)


def _images_per_second():
    """A progress column: throughput so far, in images/s."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class ImagesPerSecond(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            shown = "" if speed is None else f"{speed:.1f} images/s"
            return Text(shown, style="progress.data.speed")

    return ImagesPerSecond()
