"""The ``ppinfer`` command line; importing this package registers every command."""

from ppinfer.cli import bench, export, info, predict  # noqa: F401  (each registers its command)
from ppinfer.cli.main import cli, main

__all__ = ["cli", "main"]
