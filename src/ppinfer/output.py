"""How results reach the user: a rich table, JSON lines, a --save file written line by line."""

from __future__ import annotations

import json
import sys
from typing import IO

from ppinfer.pipeline.postprocess import Result

# Show a progress bar only when there is enough to wait for.
PROGRESS_MIN_ITEMS = 16


class ResultWriter:
    """Writes each result as it arrives; a table is printed at the end.

    ``--save`` lines are flushed one by one, so an interrupted run keeps every finished line.
    """

    def __init__(self, as_json: bool = False, save_file: str | None = None, total: int = 0,
                 stream: IO[str] | None = None) -> None:
        self.as_json = as_json
        self.save_file = save_file
        self.total = total
        self.stream = stream
        self.rows: list[Result] = []
        self._save: IO[str] | None = None
        self._progress = None
        self._task = None

    def __enter__(self) -> ResultWriter:
        if self.save_file:
            self._save = open(self.save_file, "w", encoding="utf-8")  # noqa: SIM115
        if self.total >= PROGRESS_MIN_ITEMS and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task("predicting", total=self.total)
        return self

    def write(self, result: Result) -> None:
        line = json.dumps(result.to_json_dict(), ensure_ascii=False)
        if self._save is not None:
            self._save.write(line + "\n")
            self._save.flush()
        if self.as_json:
            out = self.stream or sys.stdout
            out.write(line + "\n")
            out.flush()
        else:
            self.rows.append(result)

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._save is not None:
            self._save.close()
        if not self.as_json and self.rows:
            self._print_table()

    def _print_table(self) -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table("image", "class", "score", "label")
        for result in self.rows:
            if result.error is not None:
                table.add_row(result.file_name, "-", "-", f"[red]error: {result.error}[/red]")
                continue
            for rank, (cid, score, label) in enumerate(
                zip(result.class_ids, result.scores, result.label_names)
            ):
                table.add_row(result.file_name if rank == 0 else "", str(cid), f"{score:.4f}",
                              label, end_section=rank == len(result.class_ids) - 1)
        Console(file=self.stream or sys.stdout).print(table)
