"""``ppinfer.load()`` and the :class:`Predictor` it returns: a model and an engine, built once.

The command line's ``predict`` goes through the same functions (:func:`open_source`, the
engine registry, :func:`ppinfer.predict.iter_predictions`), so the two give the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, NamedTuple

from ppinfer.api.inputs import Inputs, collect_inputs, iter_inputs
from ppinfer.api.options import MODEL_OPTIONS, RUN_OPTIONS, check_options, parse_image_shape
from ppinfer.api.options import run_config as make_run_config
from ppinfer.config import RunConfig
from ppinfer.errors import ConfigError
from ppinfer.modelfiles.source import ModelSource
from ppinfer.pipeline.postprocess import Result


def open_source(
    model: str | os.PathLike | None = None,
    *,
    needs_architecture: bool = False,
    model_file: str | os.PathLike | None = None,
    params_file: str | os.PathLike | None = None,
    model_dir: str | os.PathLike | None = None,
    model_name: str | None = None,
    class_num: int | None = None,
    image_shape: tuple[int, int, int] | None = None,
    labels: str | os.PathLike | None = None,
) -> ModelSource:
    """The model to run: a model directory or program file, or (nothing given) the built-in
    EfficientNet-Lite0, exported into the cache on first use."""
    from ppinfer.modelfiles.formats import RUN_PREFERENCE
    from ppinfer.modelfiles.source import resolve_source

    if model is not None and model_file is None and _is_program_file(model):
        model, model_file = None, model
    if model is None and model_file is None and model_dir is None and params_file is None:
        from ppinfer.api.builtin_model import default_model_dir

        model = default_model_dir()

    def text(path):
        return None if path is None else os.fspath(path)

    return resolve_source(
        model=text(model), model_file=text(model_file), params_file=text(params_file),
        model_dir=text(model_dir), model_name=model_name, class_num=class_num,
        image_shape=image_shape, labels_file=text(labels),
        needs_architecture=needs_architecture, prefer=RUN_PREFERENCE,
    )


def _is_program_file(path: str | os.PathLike) -> bool:
    from ppinfer.modelfiles.formats import PROGRAM_NAMES

    name = os.path.basename(os.fspath(path))
    return os.path.isfile(path) and (name.endswith((".json", ".pdmodel")) or name in PROGRAM_NAMES)


def load(model: str | os.PathLike | None = None, *, engine: str | None = None,
         **options: Any) -> Predictor:
    """Load a model for prediction; the engine is built here, so setup errors raise here.

    ``model`` is a model directory or a program file (``None``: the built-in model).
    ``engine`` is a registered engine, or ``"auto"``: the fastest installed engine that agrees
    with ``analysis`` for this model and setting, measured once and cached. ``None`` (the
    default) is ``$PPINFER_ENGINE`` if set, else ``"auto"`` for an exported model where a peer
    of analysis is installed, else ``"analysis"``, as on the command line.
    A model ``ppinfer quantize`` wrote runs on its engine at int8 when neither is given.
    ``options`` are ``ppinfer predict``'s options with underscores: ``batch_size``,
    ``precision``, ``cpu_threads``, ``device`` (or ``use_gpu``/``gpu_id``), ``use_tensorrt``,
    ``top_k``, ``params_file``, ``model_name``, ``labels``, ``max_pixels``, ... An unknown
    option or an impossible value raises :class:`ppinfer.ConfigError`.
    """
    plan = plan_load(model, engine=engine, **options)
    from ppinfer.engines import create_engine

    runner = plan.built or create_engine(plan.engine, plan.source, plan.config)
    predictor = Predictor(runner, max_pixels=plan.max_pixels,
                          max_image_bytes=plan.max_image_bytes)
    predictor.engine.ensure_built()
    return predictor


class LoadPlan(NamedTuple):
    """What :func:`load` builds: the model, the run settings, the engine's registered name
    (``auto`` already decided) and the input limits; ``built`` is the engine ``auto`` built
    while measuring, else None. Ray Serve replicas build their engines from it."""

    source: ModelSource
    config: RunConfig
    engine: str
    max_pixels: int
    max_image_bytes: int
    built: Any = None


def plan_load(model: str | os.PathLike | None = None, *, engine: str | None = None,
              **options: Any) -> LoadPlan:
    """:func:`load`'s decisions without building the engine (``auto`` builds to measure)."""
    from ppinfer.engines import get_engine
    from ppinfer.pipeline.limits import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS

    check_options(options, {**RUN_OPTIONS, **MODEL_OPTIONS}, "ppinfer.load()")
    run_kw = {k: v for k, v in options.items() if k in RUN_OPTIONS}
    model_kw = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
    max_pixels = model_kw.pop("max_pixels", None) or DEFAULT_MAX_PIXELS
    max_image_bytes = model_kw.pop("max_image_bytes", None) or DEFAULT_MAX_IMAGE_BYTES
    if max_pixels < 1 or max_image_bytes < 1:
        raise ConfigError("max_pixels and max_image_bytes must be at least 1.")
    model_kw["image_shape"] = parse_image_shape(model_kw.get("image_shape"))
    if engine == "all":
        raise ConfigError("engine='all' compares engines and is for `ppinfer predict --engine "
                          "all`: load one engine here (ppinfer engines lists them).")
    if engine is None:
        engine = os.environ.get("PPINFER_ENGINE", "").strip() or None
    from ppinfer.engines.base import prepare_paddle_for

    prepare_paddle_for([engine])  # before the run options load Paddle's core alone
    config = make_run_config(**run_kw)
    engine_cls = None if engine in (None, "auto") else get_engine(engine)
    source = open_source(model, needs_architecture=engine_cls is not None
                         and engine_cls.needs_architecture, **model_kw)
    config = config.for_model(source.quantized_for)  # no precision: a quantized model's int8
    if engine is None:
        from ppinfer.engines.auto import default_engine

        engine = default_engine(source)
    if engine == "auto":  # measured once per model and setting, then cached (autoselect.py)
        from ppinfer.engines.auto import choose_engine, source_for

        choice = choose_engine(source, config)
        # the program the choice ran on (of two in one directory): replicas build on it too
        plan = LoadPlan(source_for(choice, source), config, choice.engine, max_pixels,
                        max_image_bytes, choice.built)
    else:
        plan = LoadPlan(source, config, engine, max_pixels, max_image_bytes)
    from ppinfer.engines.base import warn_precision_cost

    warn_precision_cost(get_engine(plan.engine), plan.source, config)
    return plan


class RayOptionsSpec(NamedTuple):
    address: str | None
    actors: int
    actor_cpus: float | None


class Predictor:
    """A loaded model on one engine. Reuse it: building the engine is the slow part.

    ``with ppinfer.load() as p: ...`` releases the engine at the end of the block.
    """

    def __init__(self, engine, *, max_pixels: int, max_image_bytes: int) -> None:
        self._engine = engine
        self.max_pixels = max_pixels
        self.max_image_bytes = max_image_bytes

    @property
    def engine(self):
        """The :class:`ppinfer.engines.Engine` doing the work."""
        if self._engine is None:
            raise ConfigError("This Predictor is closed: ppinfer.load() a new one.")
        return self._engine

    @property
    def config(self) -> RunConfig:
        return self.engine.config

    @property
    def source(self) -> ModelSource:
        return self.engine.source

    def predict(self, inputs: Inputs, *, runner: str = "local", ray_address: str | None = None,
                actors: int = 1, actor_cpus: float | None = None) -> list[Result]:
        """Results for ``inputs``, in order: one path (file, directory, glob) or a list of paths
        and H x W x 3 uint8 RGB arrays. An input that cannot be read gets a Result with
        ``.error`` set; the others still get theirs.

        ``runner="ray"`` predicts the paths on Ray Data instead (``actors`` engines, each built
        once from the model's path; a local Ray unless ``ray_address``), with the same results.
        """
        if runner == "local":  # every input checked before any work: a TypeError comes first
            return list(self._iter(collect_inputs(inputs)))
        if runner != "ray":
            raise ConfigError(f"Unknown runner {runner!r}: use 'local' or 'ray'.")
        return self._predict_on_ray(inputs, RayOptionsSpec(ray_address, actors, actor_cpus))

    def _predict_on_ray(self, inputs: Inputs, spec: RayOptionsSpec) -> list[Result]:
        from ppinfer.pipeline.arrays import ArrayItem
        from ppinfer.runners.ray_runner import RayOptions, predict_on_ray

        items = collect_inputs(inputs)
        if any(isinstance(item, ArrayItem) for item in items):
            raise ConfigError("runner='ray' predicts image files: pass paths, not arrays.")
        results: list[Result] = []
        engine = self.engine
        predict_on_ray(engine.source, engine.config, items, results.append,
                       engine=type(engine), options=RayOptions(*spec),
                       max_pixels=self.max_pixels)
        return results

    def predict_iter(self, inputs: Inputs) -> Iterator[Result]:
        """Like :meth:`predict`, yielding each result as soon as its batch is done. ``inputs``
        is read only a few batches ahead of the results (a generator of arrays or paths
        streams in bounded memory, an endless one too); a value that is neither a path nor an
        array raises TypeError when it is reached."""
        return self._iter(iter_inputs(inputs))

    def _iter(self, items) -> Iterator[Result]:
        from ppinfer.predict import iter_predictions

        return iter_predictions(self.engine, items, max_pixels=self.max_pixels,
                                max_image_bytes=self.max_image_bytes)

    def close(self) -> None:
        """Release the engine (and the memory its model holds)."""
        self._engine = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._engine is None:
            return "<ppinfer.Predictor (closed)>"
        c = self._engine.config
        return (f"<ppinfer.Predictor {self._engine.source.display_name} on {self._engine.name}, "
                f"{c.device} {c.precision}, batch {c.batch_size}>")
