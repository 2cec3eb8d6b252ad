"""How results reach the user: a rich table, JSON lines, a --save file written line by line."""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import sys
import unicodedata
from collections.abc import Iterable
from typing import IO, Any

from ppinfer.errors import OutputError
from ppinfer.pipeline.postprocess import Result

NARROW = 60  # columns below which the results table gives way to lines (labels stay whole)

# Show a progress bar only when there is enough to wait for.
PROGRESS_MIN_ITEMS = 16


@functools.lru_cache(maxsize=1)
def _console_class() -> type:
    from rich.console import Console

    class PipeAwareConsole(Console):
        """rich ends the process with exit 1 when stdout is closed; ppinfer's CLI ends it
        quietly with 141 instead (``cli.main.broken_pipe``), like other tools."""

        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    return PipeAwareConsole


def console(**kwargs: Any):
    """A rich Console (same arguments) whose closed stdout raises BrokenPipeError."""
    return _console_class()(**kwargs)


def control_escaped(text: object) -> str:
    """``text`` with control characters (escape codes, newlines, bidi overrides) shown as
    ``\\xNN`` / ``\\uNNNN``, as JSON shows them: a file name or label cannot recolour the
    terminal or make one row look like two."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\u200d":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def terminal_text(text: object) -> str:
    """``text`` for a rich table cell: control characters escaped, rich markup too."""
    from rich.markup import escape

    return escape(control_escaped(text))


def check_output_path(path: str | None, option: str) -> None:
    """Raise :class:`OutputError` now if ``path`` cannot be written later (its folder is missing
    or read-only, or it is a directory), so no work is lost to a bad path at the end."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"The {option} file {path} is a directory: name a file.")
    if not os.path.isdir(folder):
        raise OutputError(f"Cannot write the {option} file {path}: its folder {folder} does not "
                          "exist; create it first.")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"Cannot write the {option} file {path}: its folder {folder} is not "
                          "writable.")


def refuse_input_as_save(save_file: str | None, paths: Iterable[str],
                         listed: Iterable[str] = ()) -> None:
    """Raise :class:`OutputError` when ``save_file`` is one of the inputs: writing the JSON
    lines there would overwrite the image.

    ``paths`` (from ``-i``, already walked) are compared by file identity, links included;
    ``listed`` paths (``--input-list``, possibly millions, never touched before their turn)
    by name only, so the check costs no file-system call per listed path.
    """
    if not save_file:
        return
    try:
        target = os.stat(save_file)
    except OSError:
        return  # does not exist yet: cannot be an input
    if not stat.S_ISREG(target.st_mode):
        return  # /dev/stdout, a pipe: not an image
    own_name = os.path.normpath(os.path.abspath(save_file))
    for path in listed:
        if os.path.normpath(os.path.abspath(path)) == own_name:
            _refuse_save(save_file, path)
    for path in paths:
        try:
            same = os.path.samestat(os.stat(path), target)
        except OSError:
            continue
        if same:
            _refuse_save(save_file, path)


def _refuse_save(save_file: str, path: str) -> None:
    raise OutputError(f"The --save file {save_file} is one of the input images ({path}): "
                      "choose another file for the JSON lines.")


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
        self._save: IO[bytes] | None = None  # unbuffered: nothing is left to flush on close
        self._saved_lines = 0
        self._save_existed = False
        self._save_is_file = False  # a regular file (not /dev/stderr, a pipe, ...)
        self._whole_size = 0  # bytes of the --save file that are whole lines
        self._progress = None
        self._task = None

    def __enter__(self) -> ResultWriter:
        if self.save_file:
            self._save_existed = os.path.exists(self.save_file)
            try:
                # Append mode: checks the path without truncating; see write().
                self._save = open(self.save_file, "ab", buffering=0)  # noqa: SIM115
            except OSError as exc:
                raise OutputError(
                    f"Cannot write the --save file {self.save_file}: {exc.strerror or exc}."
                ) from None
            self._save_is_file = stat.S_ISREG(os.fstat(self._save.fileno()).st_mode)
            if self._save_is_file:
                self._whole_size = self._save.tell()
        if self.total >= PROGRESS_MIN_ITEMS and sys.stderr.isatty():
            from rich.progress import MofNCompleteColumn, Progress

            # rich's Progress redirects sys.stdout and sys.stderr into its live display by
            # default: the JSON lines meant for stdout (a file, a pipe) were drawn on the
            # terminal instead. stdout carries results only, whatever stderr is.
            self._progress = Progress(*Progress.get_default_columns(), MofNCompleteColumn(),
                                      _images_per_second(), console=console(stderr=True),
                                      transient=True, redirect_stdout=False,
                                      redirect_stderr=False)
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
                self._whole_size = 0
            data = memoryview((line + "\n").encode("utf-8"))
            while data:  # a raw write may take part of the line
                data = data[self._save.write(data):]
        except OSError as exc:
            self._drop_torn_line()
            kept = f"; it holds the {self._saved_lines} whole lines written before" \
                if self._saved_lines else ""
            raise OutputError(
                f"Cannot write to the --save file {self.save_file}: {exc.strerror or exc}{kept}."
            ) from None
        self._saved_lines += 1
        if self._save_is_file:
            self._whole_size = self._save.tell()

    def _drop_torn_line(self) -> None:
        """After a failed write (disk full): cut the file back to its last whole line, so it
        holds whole JSON lines only."""
        save, self._save = self._save, None
        with contextlib.suppress(OSError, ValueError):
            if self._save_is_file:
                os.ftruncate(save.fileno(), self._whole_size)
        with contextlib.suppress(OSError, ValueError):
            save.close()

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._save is not None:
            with contextlib.suppress(OSError):
                self._save.close()
            if self._saved_lines == 0 and not self._save_existed:
                with contextlib.suppress(OSError):
                    os.remove(self.save_file)  # created on entry, nothing to keep
        if not self.as_json and self.rows:
            self._print_table()

    def _print_table(self) -> None:
        from rich.table import Column, Table

        out = console(file=self.stream or sys.stdout)
        if out.width < NARROW:  # a table would cut the labels: each image as a few lines
            self._print_lines(out)
            return
        # Long paths wrap rather than being cut: the file name is the part that matters.
        table = Table(Column("image", overflow="fold"), "class", "score", "label")
        for result in self.rows:
            shown = result.to_json_dict()  # printable names and messages
            name = terminal_text(shown["file_name"])  # no markup, no escape codes, one line
            if result.error is not None:
                table.add_row(name, "-", "-", f"[red]error: {terminal_text(shown['error'])}[/red]",
                              end_section=True)
                continue
            for rank, (cid, score, label) in enumerate(
                zip(result.class_ids, result.scores, shown["label_names"])
            ):
                table.add_row(name if rank == 0 else "", str(cid), f"{score:.4f}",
                              terminal_text(label), end_section=rank == len(result.class_ids) - 1)
        out.print(table)

    def _print_lines(self, out) -> None:
        """The image's name, then a line per class: id, score, label (wrapped, indented)."""
        import textwrap

        from rich.text import Text

        for result in self.rows:
            shown = result.to_json_dict()
            out.print(Text(control_escaped(shown["file_name"]), style="bold"), overflow="fold")
            if result.error is not None:
                out.print(Text(f"  error: {control_escaped(shown['error'])}", style="red"))
                continue
            for cid, score, label in zip(result.class_ids, result.scores,
                                         shown["label_names"]):
                line = f"  {cid:>4} {score:.4f} {control_escaped(label)}"
                out.print(Text(textwrap.fill(line, max(out.width, 20), subsequent_indent=" " * 14)),
                          soft_wrap=True)


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
