"""The ``ppinfer`` command line; importing this package registers every command."""

try:
    from ppinfer.cli import bench, export, info, predict, quantize, serve  # noqa: F401
    from ppinfer.cli.main import cli, main
except KeyboardInterrupt:  # Ctrl-C while the command line itself loads: no traceback
    import os
    import sys

    sys.stderr.write("Interrupted.\n")
    sys.stderr.flush()
    os._exit(130)

__all__ = ["cli", "main"]
