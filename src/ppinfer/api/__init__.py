"""The Python API: ``ppinfer.load``, ``ppinfer.export``, ``ppinfer.bench``.

- :mod:`~ppinfer.api.predictor`: ``load()`` and ``Predictor`` (predict, predict_iter)
- :mod:`~ppinfer.api.inputs`: what ``predict`` accepts (paths, globs, directories, arrays)
- :mod:`~ppinfer.api.options`: run options by their command-line names, to a ``RunConfig``
- :mod:`~ppinfer.api.exporting`, :mod:`~ppinfer.api.benchmarking`: export and bench
- :mod:`~ppinfer.api.builtin_model`: the built-in EfficientNet-Lite0, exported on first use

Importing this package does not import Paddle; the first ``load``/``export``/``bench`` does.
"""

from ppinfer.api.benchmarking import bench
from ppinfer.api.exporting import export
from ppinfer.api.predictor import Predictor, load

__all__ = ["Predictor", "bench", "export", "load"]
