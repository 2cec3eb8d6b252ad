"""Engines: the ways to run a model. Importing this package registers the built-in ones."""

from ppinfer.engines import (  # noqa: F401  (importing registers them)
    analysis,
    executor_inference,
    executor_persistable,
    onnxruntime,  # imports onnxruntime/paddle2onnx only in build(): registers without them
    openvino,  # imports openvino only in build()
)
from ppinfer.engines.base import (
    ENGINES,
    Engine,
    create_engine,
    get_engine,
    list_engines,
    register_engine,
)

__all__ = ["ENGINES", "Engine", "create_engine", "get_engine", "list_engines", "register_engine"]
