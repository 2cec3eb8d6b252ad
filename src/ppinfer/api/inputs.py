"""What ``Predictor.predict`` accepts: one path, or a list mixing paths and image arrays."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, Union

import numpy as np

from ppinfer.pipeline.arrays import ArrayItem, array_name
from ppinfer.pipeline.inputs import InputItem, expand_inputs

Inputs = Union[str, os.PathLike, np.ndarray, Iterable[Any]]

_BYTES = (bytes, bytearray, memoryview)
BYTES_HINT = (
    "pass a path as str (os.fsdecode(b) for a bytes path), or decode the image's bytes into an "
    "H x W x 3 uint8 RGB array first: cv2.imdecode(np.frombuffer(data, np.uint8), "
    "cv2.IMREAD_COLOR)[:, :, ::-1]."
)


def collect_inputs(inputs: Inputs) -> list[InputItem | ArrayItem]:
    """Paths (files, directories, globs) expanded as ``predict -i`` expands them, and arrays
    in their place, in the order given.

    A path that yields nothing is handled as on the command line (an item with an error
    sentence); a file listed twice runs twice, so results line up with the inputs. Anything
    that is neither a path nor an array is a programming error: :class:`TypeError`, before
    any work is done.
    """
    return list(iter_inputs(inputs))


def iter_inputs(inputs: Inputs) -> Iterator[InputItem | ArrayItem]:
    """:func:`collect_inputs` one input at a time, reading ``inputs`` only as far as asked:
    ``predict_iter`` streams a generator with bounded memory. A value that is neither a path
    nor an array raises :class:`TypeError` when it is reached."""
    if isinstance(inputs, _BYTES):
        raise TypeError(f"predict() got {type(inputs).__name__}, not a path or an image "
                        f"array: {BYTES_HINT}")
    if isinstance(inputs, (str, os.PathLike, np.ndarray)):
        inputs = [inputs]
    for position, value in enumerate(inputs):
        if isinstance(value, np.ndarray):
            yield ArrayItem(array_name(position), value)
            continue
        if isinstance(value, _BYTES):
            raise TypeError(f"input {position} is {type(value).__name__}: {BYTES_HINT}")
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"input {position} is a {type(value).__name__}: pass a path (file, "
                            "directory or glob) or an H x W x 3 uint8 RGB numpy array.")
        yield from expand_inputs([value])
