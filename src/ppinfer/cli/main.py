"""The ``ppinfer`` command line: parse, call the library, format. Nothing else lives here.

One module per command; ``main.py`` holds the group. Heavy modules (paddle, cv2, the engines)
are imported inside the commands so that ``--help`` and usage errors are instant. Library errors
(:class:`ppinfer.errors.PPInferError`) become one sentence on stderr and the exit status
docs/predict.md's "Output and exit status" lists; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any

import click

from ppinfer import __version__
from ppinfer.errors import PPInferError

# The group's own flags, also taken after the command (``ppinfer predict --debug``): users put
# them where they think of them, and a "No such option" for a flag --help lists reads as a bug.
GLOBAL_FLAGS = ("--debug", "--verbose")


class PPInferGroup(click.Group):
    """Turns library errors into one line and an exit status."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Move the global flags given after the command in front of it (never past ``--``)."""
        end = args.index("--") if "--" in args else len(args)
        moved = [a for a in args[:end] if a in GLOBAL_FLAGS]
        rest = [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]
        return super().parse_args(ctx, moved + rest)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PPInferError as exc:
            if ctx.obj and ctx.obj.get("debug"):  # the traceback, and the same exit status
                import traceback

                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            interrupted()
        except BrokenPipeError:
            broken_pipe()
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug, not a user error: still one line, exit 2
            if ctx.obj and ctx.obj.get("debug"):
                import traceback

                traceback.print_exc()
                ctx.exit(2)
            detail = (str(exc).strip().splitlines() or [""])[0][:200]
            again = f"ppinfer --debug {ctx.invoked_subcommand or ''} ...".replace("  ", " ")
            click.echo(f"Error: unexpected {type(exc).__name__} ({detail}): rerun as '{again}' "
                       "(--debug before the command) for the traceback and report it.", err=True)
            ctx.exit(2)


@click.group(cls=PPInferGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ppinfer")
@click.option("--debug", is_flag=True,
              help="Show tracebacks instead of one-line errors (and Paddle's own logs).")
@click.option("--verbose", is_flag=True,
              help="Let Paddle's and the converters' own log lines through to stderr.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """PaddlePaddle image classification: export a checkpoint, predict on images, measure speed.

    \b
    ppinfer predict photo.jpg                     # built-in model, top-5
    ppinfer export -m ResNet50_vd -p ckpt/ -o out/  # checkpoint -> model
    ppinfer predict photos/ --model out/ --json   # your model, JSON lines
    """
    ctx.ensure_object(dict)["debug"] = debug
    from ppinfer.runtime.quiet import set_verbose

    set_verbose(verbose or debug)  # each invocation its own (one process may run several)
    _show_precision_warnings()


def _show_precision_warnings() -> None:
    """The library's PrecisionWarning (``ppinfer serve`` loads through ``ppinfer.load``) as
    one ``warning:`` line on stderr, like the command's own, not Python's file:line form."""
    import warnings

    from ppinfer.errors import PrecisionWarning

    shown = warnings.showwarning
    if getattr(shown, "ppinfer", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PrecisionWarning):
            click.echo(f"warning: {message}", err=True)
            return
        shown(message, category, filename, lineno, file, line)

    show.ppinfer = True
    warnings.showwarning = show



def _flush_quietly() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def interrupted() -> None:
    """Ctrl-C: say so and end now, exit 130. ``os._exit`` rather than ``sys.exit``: the
    interpreter would otherwise wait at shutdown for worker threads that may be stuck in a
    read (outputs are already flushed line by line, and temporary directories removed by
    ``finally`` blocks on the way here)."""
    with contextlib.suppress(OSError, ValueError):
        click.echo("Interrupted.", err=True)
    _flush_quietly()
    os._exit(130)


def broken_pipe() -> None:
    """stdout was closed (``ppinfer predict --json | head -1``): end quietly with 141, as
    tools killed by SIGPIPE do. stdout is pointed at /dev/null first, so the interpreter's
    final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(141)


def main() -> None:
    """Console entry point. Paddle's C++ side sometimes prints to fd 1; send that to stderr so
    stdout carries only ppinfer's output (``--json`` lines stay parseable)."""
    try:
        out_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = open(out_fd, "w", buffering=1, encoding="utf-8", closefd=True)  # noqa: SIM115
    except OSError:
        pass
    try:
        cli(prog_name="ppinfer")
    except KeyboardInterrupt:  # outside a command (while importing, parsing, ...)
        interrupted()
    except BrokenPipeError:
        broken_pipe()
    finally:
        # The work is done and its exit status decided: a Ctrl-C while the interpreter and
        # Paddle tear down must not turn it into death by signal.
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
