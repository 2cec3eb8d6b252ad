"""The Engine interface (PaddleClas 1.x's four inference steps) and the engine registry.

build -> organize data -> execute -> analyze. Engines register by name with
``@register_engine("name")``; third-party engines plug in through the ``ppinfer.engines``
entry-point group (an entry point names an Engine subclass; importing it registers it).
"""

from __future__ import annotations

import fnmatch
import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ppinfer.config import RunConfig
from ppinfer.errors import ConfigError, ModelFormatError, UnknownNameError
from ppinfer.modelfiles.formats import PEER_KINDS, is_quantized, verify_layout
from ppinfer.modelfiles.source import ModelSource
from ppinfer.pipeline.postprocess import (
    Result,
    is_probabilities,
    results_from_probabilities,
    score_rows,
    to_probabilities,
)
from ppinfer.pipeline.preprocess import make_batch, preprocess_image
from ppinfer.runtime.paddle_env import paddle_env

ENTRY_POINT_GROUP = "ppinfer.engines"


class Engine(ABC):
    """One way to run a model. Subclasses implement :meth:`build` and :meth:`execute`.

    Many threads may share one engine (a web server, a user's thread pool): each call gets its
    own answer. An engine whose runtime keeps per-call state in one place (Paddle's input and
    output handles, an Executor's scope) cannot run two batches at once, so every ``execute`` a
    subclass defines is serialized by the engine's own lock, unless the class sets
    ``concurrent = True`` because it isolates calls itself (ONNX Runtime's ``run`` is
    thread-safe; the openvino engine takes one infer request per call).
    """

    name: ClassVar[str] = ""
    #: one line for `ppinfer engines`
    summary: ClassVar[str] = ""
    #: precisions the engine runs (RunConfig decides which this machine can)
    precisions: ClassVar[frozenset[str]] = frozenset({"fp32"})
    #: ModelLayout kinds this engine can run (see ppinfer.modelfiles.formats)
    layouts: ClassVar[frozenset[str]] = frozenset()
    #: True when the engine builds the architecture itself (needs --model-name + checkpoint)
    needs_architecture: ClassVar[bool] = False
    #: False for engines --engine auto never measures (known slower, kept for checking)
    auto_candidate: ClassVar[bool] = True
    #: True when ``execute`` may run in several threads at once (else it is serialized)
    concurrent: ClassVar[bool] = False
    #: True when the runtime runs a quantized model's int8 ops as int8 whatever precision is
    #: asked (so only int8 describes such a run honestly)
    quantized_as_int8: ClassVar[bool] = False
    #: True when the engine builds or runs static programs through Paddle's Python side (the
    #: Executor engines): Paddle is then imported whole from the start (:func:`prepare_paddle_for`)
    runs_paddle_python: ClassVar[bool] = False

    def __init__(self, source: ModelSource, config: RunConfig) -> None:
        self.source = source
        self.config = config.resolve()
        self._built = False
        self._output: str | None = None
        self._build_lock = threading.Lock()
        self._execute_lock = threading.RLock()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        execute = cls.__dict__.get("execute")
        if execute is not None and not cls.concurrent:
            cls.execute = _serialized(execute)

    # -- the four steps ---------------------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Load the model and make it ready to execute. Called once."""

    def organize(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 images -> one NCHW float32 batch, with the model's preprocessing."""
        cfg = self.source.preprocess
        return make_batch([preprocess_image(image, cfg) for image in images])

    @abstractmethod
    def execute(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch; return the model's output scores [N, classes]."""

    def analyze(self, outputs: np.ndarray, file_names: Sequence[str]) -> list[Result]:
        """Model outputs -> top-k results with label names."""
        return self.results(self.probabilities(outputs, len(file_names)), file_names)

    def results(self, probs: np.ndarray, file_names: Sequence[str]) -> list[Result]:
        """Scores (from :meth:`probabilities`) -> top-k results with label names."""
        probs = np.asarray(probs).reshape(len(file_names), -1)
        labels = self.source.labels_for(probs.shape[1])
        return results_from_probabilities(file_names, probs, self.config.top_k, labels)

    def probabilities(self, outputs: np.ndarray, rows: int | None = None) -> np.ndarray:
        """[N, C] scores: a softmax only when the model ends in logits (:meth:`output_kind`).
        An output that is not finite [N, C >= 2] scores for the ``rows`` images of the batch
        (an argmax head, a feature map, overflowing logits) is a ModelFormatError."""
        scores = score_rows(outputs, rows)
        return to_probabilities(scores, self.output_kind(scores))

    def output_kind(self, outputs: np.ndarray | None = None) -> str:
        """What the model's output is (softmax, sigmoid, logits): read once from its program
        (see :meth:`ModelSource.output_kind`). Engines that build the architecture append a
        softmax themselves. Only a program that cannot be read is judged from its first
        batch, and that judgement then holds for the engine's life."""
        if self._output is None:
            if self.needs_architecture:
                self._output = "softmax"
            else:
                self._output = self.source.output_kind()
            if self._output is None and outputs is not None:
                self._output = "softmax" if is_probabilities(outputs) else "logits"
        return self._output or "logits"

    def predict(self, images: Sequence[np.ndarray], file_names: Sequence[str]) -> list[Result]:
        """All four steps on decoded images."""
        self.ensure_built()
        return self.analyze(self.execute(self.organize(images)), file_names)

    # -- helpers ----------------------------------------------------------------------------
    def ensure_built(self) -> None:
        if self._built:
            return
        with _lock_of(self, "_build_lock", threading.Lock):  # two first callers build once
            if self._built:
                return
            problem = precision_problem(type(self), self.source, self.config.precision)
            if problem:
                raise ConfigError(problem)
            self.check_layout()
            from ppinfer.runtime.quiet import captured_output

            with captured_output():  # Paddle's pass logs, deprecation notes, glog lines
                self.build()
            self._built = True

    def check_layout(self) -> None:
        layout = self.source.layout
        if self.needs_architecture or layout is None:
            return
        if layout.kind not in self.layouts:
            raise ModelFormatError(
                f"The {self.name} engine cannot run the {layout.describe()}: "
                + _suggest(layout.kind)
            )
        env = paddle_env()
        if layout.ir == "pir" and not env.can_run_pir:
            raise ModelFormatError(
                f"{layout.program} is a PIR (.json) program, which needs Paddle 3; Paddle "
                f"{env.version} is installed: upgrade paddlepaddle or export with "
                "--format legacy."
            )
        # Paddle loads truncated parameters, or another class count's, without complaint.
        verify_layout(layout)

    @classmethod
    def missing(cls) -> str | None:
        """What this engine needs that is not installed (one sentence), or None."""
        return None

    @classmethod
    def can_run(cls, source: ModelSource) -> bool:
        if cls.needs_architecture:
            return source.model_name is not None and source.checkpoint is not None
        return source.layout is not None and source.layout.kind in cls.layouts


_LOCK_CREATION = threading.Lock()


def _lock_of(engine: Engine, attribute: str, kind) -> threading.Lock:
    """The engine's lock ``attribute``, made here for a subclass whose ``__init__`` skipped
    ``Engine.__init__``."""
    lock = engine.__dict__.get(attribute)
    if lock is None:
        with _LOCK_CREATION:
            lock = engine.__dict__.setdefault(attribute, kind())
    return lock


def _serialized(execute):
    """``execute`` under the engine's re-entrant lock: copy-in, run and copy-out of one batch
    happen before another thread's begin (a subclass calling ``super().execute`` nests)."""

    @functools.wraps(execute)
    def locked(self: Engine, batch: np.ndarray) -> np.ndarray:
        with _lock_of(self, "_execute_lock", threading.RLock):
            return execute(self, batch)

    locked.__serialized__ = True
    return locked


def precision_problem(engine_cls: type[Engine], source: ModelSource, precision: str) -> str | None:
    """Why ``engine_cls`` would not really run ``precision`` on ``source`` (None if it would)."""
    made_for = source.quantized_for
    if made_for and made_for != engine_cls.name:  # first: no other advice helps
        return (f"This model was quantized for the {made_for} engine (ppinfer quantize): run it "
                f"with --engine {made_for}, or leave --engine out.")
    if precision not in engine_cls.precisions:
        return (f"The {engine_cls.name} engine runs {', '.join(sorted(engine_cls.precisions))} "
                f"only, not {precision}: use --engine analysis for {precision}.")
    if precision == "int8" and source.layout is not None and not is_quantized(source.layout):
        return ("int8 on the CPU needs a quantized model (quantize_linear or fake_quantize ops, "
                "e.g. from ppinfer quantize), and this one has none: use bf16 or fp32.")
    if precision != "int8" and _runs_as_int8_only(engine_cls, source):
        return (f"This model is quantized, and the {engine_cls.name} engine runs its int8 ops as "
                f"int8, not {precision}: pass --precision int8.")
    return None


def precision_cost(engine_cls: type[Engine], source: ModelSource,
                   config: RunConfig) -> str | None:
    """One line when ``config`` asks, by name, for a float precision on a model ``ppinfer
    quantize`` wrote and ``engine_cls`` runs it so (a Paddle PTQ model on analysis: its
    quantize ops become float arithmetic, 24x slower than int8 for the built-in Lite0), else
    None. A precision left to ppinfer is int8 there (RunConfig.for_model)."""
    made_for = source.quantized_for
    if (not made_for or not config.precision_given or config.precision == "int8"
            or engine_cls.quantized_as_int8
            or precision_problem(engine_cls, source, config.precision)):  # refused, not run
        return None
    return (f"this model is int8 (quantized for {made_for}): --precision {config.precision} "
            "runs its quantize ops as float arithmetic, far slower than int8 (24x for the "
            "built-in Lite0) and than the float model; drop --precision (or pass --precision "
            "int8) to run it as int8.")


def warn_precision_cost(engine_cls: type[Engine], source: ModelSource,
                        config: RunConfig) -> None:
    """:func:`precision_cost`'s line as a :class:`ppinfer.errors.PrecisionWarning` (the
    command line prints it on stderr)."""
    note = precision_cost(engine_cls, source, config)
    if note:
        import warnings

        from ppinfer.errors import PrecisionWarning

        warnings.warn(note, PrecisionWarning, stacklevel=3)


def _runs_as_int8_only(engine_cls: type[Engine], source: ModelSource) -> bool:
    """Whether ``engine_cls`` would run ``source`` as int8 whatever precision is asked: an
    ONNX or OpenVINO program with int8 ops, or a Paddle model ``ppinfer quantize`` wrote (its
    card says so; reading a Paddle program here would load Paddle for every float model)."""
    layout = source.layout
    if not engine_cls.quantized_as_int8 or layout is None:
        return False
    if layout.kind in PEER_KINDS:
        return is_quantized(layout)
    return source.quantized_for is not None


def first_line(exc: BaseException) -> str:
    """The first line of Paddle's often many-line error, for a one-sentence message."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _suggest(kind: str) -> str:
    if kind in ("persistable", "pdparams"):
        return ("it is a checkpoint without a program; export it first or use "
                "--engine executor-persistable.")
    return "use another --engine."


ENGINES: dict[str, type[Engine]] = {}
_plugins_loaded = False


def prepare_paddle_for(engines) -> None:
    """Import Paddle whole before anything loads its core alone, when one of ``engines`` (or
    ``all``) runs Paddle's Python side: that engine imports Paddle whole anyway, so the fast
    start would only add a second step. (The two steps are safe: ``import paddle`` is handed the
    core loaded alone, see runtime/paddle_core.py; before that, they corrupted the heap at exit.)
    Engines that never import Paddle keep the fast start.
    """
    load_plugins()
    if any(name == "all" or getattr(ENGINES.get(name), "runs_paddle_python", False)
           for name in engines if name):
        from ppinfer.runtime.paddle_import import import_paddle

        import_paddle()


def register_engine(name: str):
    """Class decorator: make ``cls`` available as ``--engine name``."""

    def decorator(cls: type[Engine]) -> type[Engine]:
        if name in ENGINES and ENGINES[name] is not cls:
            raise ValueError(f"engine {name!r} is registered twice")
        cls.name = name
        ENGINES[name] = cls
        return cls

    return decorator


def load_plugins() -> None:
    """Import third-party engines declared in the ``ppinfer.engines`` entry-point group."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, Engine) and ep.name not in ENGINES:
            register_engine(ep.name)(cls)


def list_engines(pattern: str = "*") -> list[str]:
    load_plugins()
    return sorted(n for n in ENGINES if fnmatch.fnmatchcase(n, pattern))


def get_engine(name: str) -> type[Engine]:
    load_plugins()
    try:
        return ENGINES[name]
    except KeyError:
        raise UnknownNameError(
            f"Unknown engine {name!r}: use one of {', '.join(sorted(ENGINES))}."
        ) from None


def create_engine(name: str, source: ModelSource, config: RunConfig) -> Engine:
    return get_engine(name)(source, config)
