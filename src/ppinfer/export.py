"""``ppinfer export``: architecture + checkpoint -> inference model directory, checked and atomic.

The model is written into a hidden sibling directory (``.NAME.tmp-PID-*``), validated against
the training program (the shipped photo and its mirror image, preprocessed the model's way,
through both; largest absolute score difference reported, and Paddle Inference's own apart:
:class:`SelfCheck`), synced to disk, and only then put
in place: by an atomic exchange with the old directory where the OS has one (Linux
``renameat2``), else by two renames. An export killed at any point leaves the old model or the
new one, never a mix; what a killed export leaves hidden is tidied by the next export to the
same place.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import filecmp
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ppinfer import __version__
from ppinfer.checkpoints import read_checkpoint, sha256
from ppinfer.errors import ConfigError, ExportError
from ppinfer.io.publish import make_temp_dir, swap_into_place, sync_dir, tidy_after_killed_exports
from ppinfer.modelfiles.export_plan import ExportPlan, plan_export, with_part
from ppinfer.modelfiles.formats import detect_directory
from ppinfer.modelfiles.modelcard import ModelCard, write_card
from ppinfer.modelfiles.output_dir import check_output_dir
from ppinfer.modelfiles.program_output import output_kind
from ppinfer.models.program import INPUT_NAME, build_static_model
from ppinfer.pipeline.labels import imagenet_labels, load_labels
from ppinfer.pipeline.preprocess_config import PreprocessConfig
from ppinfer.runtime.interrupts import deferred_interrupts
from ppinfer.runtime.paddle_env import paddle_env
from ppinfer.runtime.paddle_import import import_paddle
from ppinfer.runtime.quiet import captured_output

FORMATS = ("pir", "legacy", "seed")
# "seed" (the flag value scripts use) names PaddleClas 1.x's model + params layout; the alias
# says so.
FORMAT_ALIASES = {"paddleclas1": "seed"}
VALIDATION_ATOL = 1e-4


@dataclass
class ExportResult:
    output: Path
    model_name: str
    format: str
    files: list[str]
    class_num: int
    input_shape: tuple[int, int, int]
    max_abs_diff: float | None  # the exported program (Executor) vs the training program
    seconds: float
    # Paddle Inference's optimised kernels on the export vs the training program: reported, an
    # engine's own rounding is never a reason to refuse the export.
    engine_max_abs_diff: float | None = None
    # What the export assumed or chose that the user should know (one sentence each): the
    # arguments the checkpoint cannot show, the distillation part exported, ...
    notes: list[str] = field(default_factory=list)


def _save(static_model, directory: Path, fmt: str) -> list[str]:
    paddle = import_paddle()
    with captured_output(), static_model.guard():
        paddle.static.save_inference_model(
            str(directory / "inference"),
            [static_model.feed],
            [static_model.fetch],
            static_model.executor,
            program=static_model.program,
        )
    if fmt == "seed":
        os.replace(directory / "inference.pdmodel", directory / "model")
        os.replace(directory / "inference.pdiparams", directory / "params")
    return sorted(p.name for p in directory.iterdir())


@dataclass(frozen=True)
class SelfCheck:
    """The export's self-check, as largest |score differences| from the training program.

    ``program``: each saved program run by the Executor, which runs the operators as the
    training program does: what ppinfer wrote, and the only thing an export is refused for.
    ``engine``: Paddle Inference (``analysis``) running them with its fused, optimised kernels:
    the engine's own rounding, reported apart (PPHGNetV2_B6 differs by 1.75e-4 there, and
    PaddleClas's own export of it by 1.2e-3, while the Executor agrees to 5e-7).
    """

    program: float
    engine: float


def _validate(static_model, directory: Path, preprocess: PreprocessConfig) -> SelfCheck:
    """Run the shipped photo and its mirror image through the training program and through
    every program ``directory`` holds (Paddle 3: PIR and legacy), by the Executor and by
    Paddle Inference (see :class:`SelfCheck`).

    The input is a real photo, preprocessed as predict will: random noise drives a network far
    from what it was trained (or calibrated) on into saturated scores, where fp32 differences
    between the Executor and oneDNN's fused kernels reach 1e-4 (seen with PP-LCNet) although
    photos agree to 1e-6.
    """
    batch = _check_batch(static_model, preprocess)
    with captured_output():  # the Executor's first run logs ("New Executor is Running")
        expected = static_model.run(batch)
        diffs = {"executor-inference": [], "analysis": []}
        for source in _saved_programs(static_model, directory, preprocess):
            for engine, found in diffs.items():
                found.append(float(np.max(np.abs(_run(engine, source, batch) - expected))))
    return SelfCheck(max(diffs["executor-inference"]), max(diffs["analysis"]))


def _check_batch(static_model, preprocess: PreprocessConfig) -> np.ndarray:
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.preprocess import preprocess_image
    from ppinfer.pipeline.sample import sample_image_path

    if static_model.input_shape[0] == 3:
        photo = preprocess_image(load_image(sample_image_path()), preprocess)
        batch = np.stack([photo, photo[:, :, ::-1]])
    else:  # not an RGB model: no photo fits
        batch = np.random.default_rng(0).standard_normal((2, *static_model.input_shape))
    return np.ascontiguousarray(batch, dtype=np.float32)


def _saved_programs(static_model, directory: Path, preprocess: PreprocessConfig):
    """A ModelSource for each program the directory holds (Paddle 3's export: both)."""
    from ppinfer.modelfiles.source import ModelSource

    for prefer in ("pir", "legacy"):
        layout = detect_directory(directory, prefer=prefer)
        if layout.ir == prefer:
            yield ModelSource(layout=layout, model_name=static_model.spec.name,
                              input_shape=static_model.input_shape, preprocess=preprocess)


def _run(engine_name: str, source, batch: np.ndarray) -> np.ndarray:
    from ppinfer.config import RunConfig
    from ppinfer.engines import create_engine

    engine = create_engine(engine_name, source, RunConfig(device="cpu").resolve())
    engine.build()
    return engine.execute(batch)


def engine_note(check: SelfCheck) -> str:
    """Said when Paddle Inference's kernels, not the export, differ by more than the limit."""
    return (f"Paddle Inference's optimised kernels score this export up to {check.engine:.2e} "
            f"from the training program (more than {VALIDATION_ATOL:g}), while the exported "
            f"program itself agrees within {check.program:.2e} (the Executor): the difference "
            "is the engine's, not the export's; --engine executor-inference runs the program "
            "without those kernels.")


def _add_legacy_program(tmp: Path, plan: ExportPlan, input_shape, state, source: str) -> bool:
    """Write the legacy program (``inference.pdmodel``) beside Paddle 3's PIR one, sharing its
    ``inference.pdiparams``: Paddle Inference runs it 7-42% faster on 4 of 6 measured rows and
    starts 0.5 s sooner, and OpenVINO reads it without an ONNX conversion (BENCHMARKS.md);
    PaddleClas and PaddleX keep reading ``inference.json``. Kept only when the legacy save
    writes byte-identical parameters (then one file serves both programs)."""
    legacy = build_static_model(plan.spec, plan.class_num, input_shape, ir="legacy",
                                arguments=plan.arguments)
    legacy.load_state(state, source=source)
    side = tmp / ".legacy"
    side.mkdir()
    try:
        _save(legacy, side, "legacy")
        if not filecmp.cmp(side / "inference.pdiparams", tmp / "inference.pdiparams",
                           shallow=False):
            return False
        os.replace(side / "inference.pdmodel", tmp / "inference.pdmodel")
        return True
    finally:
        shutil.rmtree(side, ignore_errors=True)


def _make_temp_dir(output: Path) -> Path:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        return make_temp_dir(output)
    except OSError as exc:
        raise ExportError(
            f"Cannot write the export beside {output}: {exc.strerror or exc} "
            f"({exc.filename or output.parent}); choose a writable -o."
        ) from None


@contextlib.contextmanager
def _writing(output: Path):
    """Writing the model beside ``output``: a full disk or a read-only folder is one sentence
    (an ExportError whose cause is the OSError, for callers that name their own folder)."""
    try:
        yield
    except OSError as exc:
        raise ExportError(
            f"Cannot write the export beside {output}: {exc.strerror or exc}; free some space "
            "or choose a writable -o."
        ) from exc


def _card(plan: ExportPlan, labels, static_model, fmt, checkpoint: Path, env, kind: str
          ) -> ModelCard:
    return ModelCard(
        model_name=plan.spec.name,
        paddlex_name=plan.card_name,
        preprocess=plan.preprocess,
        labels=labels,
        topk=plan.topk,
        provenance={
            "class_num": plan.class_num,
            "input_shape": list(static_model.input_shape),
            "input_name": INPUT_NAME,
            "output": kind,
            "format": fmt,
            "checkpoint": os.path.abspath(checkpoint),
            "checkpoint_sha256": sha256(checkpoint),
            **plan.provenance(),
            "ppinfer_version": __version__,
            "paddle_version": env.version,
            "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    )


def _check_format(fmt: str | None, env) -> str:
    fmt = FORMAT_ALIASES.get(fmt, fmt) if fmt else env.native_format
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}, "
                          "or paddleclas1 (= seed).")
    if fmt == "pir" and not env.can_run_pir:
        raise ConfigError(
            f"--format pir needs Paddle 3, and Paddle {env.version} is installed: "
            "use --format legacy or paddleclas1, or upgrade paddlepaddle."
        )
    return fmt


def export_model(
    model_name: str | None,
    checkpoint: str | Path,
    output: str | Path,
    *,
    class_num: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    fmt: str | None = None,
    labels_file: str | None = None,
    force: bool = False,
    validate: bool = True,
    config: str | Path | Literal[False] | None = None,
    arch_args: dict | None = None,
    checkpoint_part: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``checkpoint`` into ``output``; the architecture and its arguments come from
    ``model_name``, the training ``config`` (False: none, not even one found beside the
    checkpoint) and ``arch_args`` (modelfiles/export_plan.py).
    ``notify`` gets each note once the export is in place (the CLI prints them on stderr)."""
    started = time.perf_counter()
    if class_num is not None and class_num < 1:
        raise ConfigError("--class-num must be at least 1.")
    plan = plan_export(model_name, config=config, class_num=class_num, input_shape=input_shape,
                       arch_args=arch_args, labels_file=labels_file, part=checkpoint_part,
                       checkpoint=checkpoint)
    env = paddle_env()
    fmt = _check_format(fmt, env)
    output = Path(output)
    tidy_after_killed_exports(output)
    check_output_dir(output, force)
    labels = load_labels(plan.labels_file, plan.class_num) if plan.labels_file else (
        imagenet_labels() if plan.class_num == 1000 else None
    )
    with deferred_interrupts() as checkpoint_interrupt:
        read = read_checkpoint(checkpoint, plan.spec, plan.part,
                               part_asked=checkpoint_part is not None)
        plan = with_part(plan, read.part, read.parts)
        checkpoint_interrupt()
        static_model = build_static_model(
            plan.spec, plan.class_num, plan.input_shape, ir="pir" if fmt == "pir" else "legacy",
            arguments=plan.arguments,
        )
        static_model.load_state(read.state, source=str(read.path))
        checkpoint_interrupt()
        tmp = _make_temp_dir(output)
        try:
            with _writing(output):
                files = _save(static_model, tmp, fmt)
                if fmt == "pir" and _add_legacy_program(tmp, plan, plan.input_shape,
                                                        read.state, str(read.path)):
                    files = sorted([*files, "inference.pdmodel"])
                program = detect_directory(tmp, prefer="pir" if fmt == "pir" else "legacy"
                                           ).program
                # what the program ends in, so predict never judges it from the scores
                kind = output_kind(program) or "softmax"
                write_card(tmp, _card(plan, labels, static_model, fmt, read.path, env, kind))
            checkpoint_interrupt()
            check = _validate(static_model, tmp, plan.preprocess) if validate else None
            if check is not None and check.program > VALIDATION_ATOL:
                raise ExportError(
                    f"The exported program differs from the training program by "
                    f"{check.program:.2e} (more than {VALIDATION_ATOL:g}, run by the same "
                    "Executor): report this with the model name and format."
                )
            if check is not None and check.engine > VALIDATION_ATOL:
                plan.notes.append(engine_note(check))
            with _writing(output):
                sync_dir(tmp)
                checkpoint_interrupt()  # the last point where Ctrl-C keeps the old model
                swap_into_place(tmp, output)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for note in plan.notes:  # for the export written: a refused one has only its error
        (notify or (lambda _note: None))(note)
    return ExportResult(
        output=output, model_name=plan.spec.name, format=fmt, files=files + ["inference.yml"],
        class_num=plan.class_num, input_shape=static_model.input_shape,
        max_abs_diff=None if check is None else check.program,
        engine_max_abs_diff=None if check is None else check.engine,
        seconds=time.perf_counter() - started, notes=list(plan.notes),
    )


# ``ppinfer.export(...)``, the Python API's export, is this module called (_CallableModule in
# ppinfer/__init__.py).
from ppinfer import _make_callable  # noqa: E402

_make_callable(__name__, "ppinfer.api.exporting:export")
