"""Unpickle checkpoints without running anything they name.

A pickle can call any importable function while it loads (``os.system``, ``builtins.eval``, ...),
so ``pickle.load`` on a downloaded checkpoint runs whatever its author wanted. Here every global a
pickle names is looked up in an allow-list of *local* objects instead of being imported: the
default list covers what a state dict of numpy arrays needs (Paddle ``.pdparams``), and a caller
adds its own entries, e.g. torch's tensor rebuilders mapped to functions that build numpy arrays.
Anything else stops the load before it is called.
"""

from __future__ import annotations

import _codecs
import _compat_pickle
import collections
import pickle
from collections.abc import Mapping
from typing import IO, Any, Callable

import numpy as np

from ppinfer.errors import CheckpointError, UnsafePickleError

# numpy pickles arrays and scalars through these; take them from numpy's own reducers so the
# same objects serve both spellings (numpy.core before numpy 2, numpy._core after).
_reconstruct_array = np.ndarray.__reduce__(np.empty(0))[0]
_reconstruct_scalar = np.float32(0).__reduce__()[0]

DEFAULT_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Containers. Paddle 2.x pickles a tensor as REDUCE(builtins.tuple, ((name, ndarray),)).
    ("builtins", "tuple"): tuple,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    # Protocol 2 spells a bytes object as _codecs.encode(str, "latin1").
    ("_codecs", "encode"): _codecs.encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    DEFAULT_ALLOWED[(_module, "_reconstruct")] = _reconstruct_array
    DEFAULT_ALLOWED[(_module, "scalar")] = _reconstruct_scalar


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose globals come only from ``allowed``; it never imports anything.

    ``persistent_load``, if given, resolves persistent ids (torch uses them for tensor storage).
    """

    def __init__(
        self,
        file: IO[bytes],
        allowed: Mapping[tuple[str, str], Any],
        persistent_load: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._source = getattr(file, "name", None) or "The pickle"
        if persistent_load is not None:
            self.persistent_load = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        # Protocols 0-2 spell some globals the Python 2 way (__builtin__.tuple); the stock
        # find_class translates them, so do the same before looking them up.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source} names the global {module}.{name}, which is not on ppinfer's "
                "allow-list, so the file is refused and nothing in it was run."
            ) from None


def safe_load(
    fileobj: IO[bytes],
    extra_allowed: Mapping[tuple[str, str], Any] | None = None,
    persistent_load: Callable[[Any], Any] | None = None,
) -> Any:
    """Load one pickle from ``fileobj`` with :data:`DEFAULT_ALLOWED` plus ``extra_allowed``.

    ``extra_allowed`` maps ``(module, name)`` as spelled in the pickle to the local object to use
    in its place. Raises :class:`UnsafePickleError` for any other global and
    :class:`CheckpointError` if the bytes are not a readable pickle.
    """
    allowed = {**DEFAULT_ALLOWED, **(extra_allowed or {})}
    unpickler = RestrictedUnpickler(fileobj, allowed, persistent_load)
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, UnicodeDecodeError, MemoryError) as exc:
        source = getattr(fileobj, "name", None) or "The pickle"
        raise CheckpointError(
            f"{source} is not a readable pickle or is truncated ({type(exc).__name__}: {exc})."
        ) from exc
