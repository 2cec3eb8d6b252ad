"""``onnxruntime``: the Paddle model converted to ONNX by paddle2onnx, run by ONNX Runtime.

A peer to measure Paddle Inference against (``ppinfer bench --engine analysis,onnxruntime``),
and a plain engine for ``predict``. Installed by the ``onnx`` extra (``pip install
'ppinfer[onnx]'``); without it, :meth:`OnnxRuntimeEngine.build` says so in one sentence.

The converted model is cached under ``<cache>/onnx/<digest>/model.onnx`` (see
:func:`ppinfer.config.default_cache_dir`), keyed by the SHA-256 of the program and parameter
files and the converter's version, never written into the user's model directory. Each
conversion is checked once against Paddle Inference on a random batch (optimum's export
validation), and the figures are kept beside it in ``conversion.json``.

Which paddle2onnx reads what (checked with paddle2onnx 2.1.0 and 1.3.1):
- paddle2onnx 2.x needs Paddle 3; it converts PIR ``.json`` programs and, by translating them
  to PIR first, legacy ``.pdmodel`` programs.
- paddle2onnx 1.x reads legacy ``.pdmodel`` programs only; it is the one to use on Paddle 2.6.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from ppinfer.config import default_cache_dir
from ppinfer.engines.base import Engine, first_line, register_engine
from ppinfer.errors import ConfigError, ModelFormatError
from ppinfer.io import own_files as own
from ppinfer.modelfiles.formats import ModelLayout
from ppinfer.runtime.paddle_env import package_version
from ppinfer.runtime.quiet import output_to

INSTALL_HINT = (
    "The onnxruntime engine needs onnxruntime and paddle2onnx: install them with "
    "pip install 'ppinfer[onnx]'."
)
OPSET = 13
#: errors writing the conversion that are the cache's, not the model's
CACHE_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)
VALIDATION_ATOL = 1e-4  # largest |score difference| to Paddle Inference accepted, per unit score


@register_engine("onnxruntime")
class OnnxRuntimeEngine(Engine):
    layouts = frozenset({"pir", "legacy", "seed", "onnx"})
    # int8: an .onnx that ``ppinfer quantize --engine onnxruntime`` wrote (QDQ ops)
    precisions = frozenset({"fp32", "int8"})
    quantized_as_int8 = True  # a QDQ graph runs as int8 whatever is asked
    summary = "ONNX Runtime on the model converted by paddle2onnx (cached), a peer to compare"
    concurrent = True  # InferenceSession.run is thread-safe (ONNX Runtime's documented contract)

    @classmethod
    def missing(cls) -> str | None:
        import importlib.util

        needed = ("onnxruntime", "paddle2onnx")
        return INSTALL_HINT if any(importlib.util.find_spec(m) is None for m in needed) else None

    def build(self) -> None:
        ort = _import_onnxruntime()
        providers = ["CPUExecutionProvider"]
        if self.config.use_gpu:  # unverified on a GPU: none could run onnxruntime-gpu here
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError(
                    "This onnxruntime has no CUDA provider: install onnxruntime-gpu or pass "
                    "--no-use-gpu."
                )
            providers = [("CUDAExecutionProvider", {"device_id": self.config.gpu_id}), *providers]
        layout = self.source.layout
        if layout.kind == "onnx":  # run as it is (a quantized model), no conversion
            path = layout.program
        else:
            path = onnx_model_path(layout, cpu_threads=self.config.cpu_threads)
        try:
            self.session = ort.InferenceSession(
                str(path), session_options(ort, self.config.cpu_threads), providers=providers
            )
        except Exception as exc:  # onnxruntime's own exception types, not importable by name
            if layout.kind != "onnx":
                raise
            raise ModelFormatError(f"ONNX Runtime cannot load {path} ({first_line(exc)}): "
                                   "check the file, or quantize the model again.") from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [self.session.get_outputs()[0].name]
        self.onnx_path = path

    def execute(self, batch: np.ndarray) -> np.ndarray:
        # ONNX Runtime reads a contiguous float32 array in place (no copy on the CPU).
        feed = {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        return self.session.run(self.output_names, feed)[0]


def session_options(ort, cpu_threads: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return onnxruntime


def converter_problem(p2o_version: str | None, paddle_version: str, layout_kind: str) -> str | None:
    """Why this paddle2onnx cannot convert this layout with this Paddle (one sentence), or None."""
    if p2o_version is None:
        return INSTALL_HINT
    p2o_major = int(p2o_version.split(".")[0])
    if p2o_major >= 2 and int(paddle_version.split(".")[0]) < 3:
        return (
            f"paddle2onnx {p2o_version} needs Paddle 3 and Paddle {paddle_version} is installed: "
            "run pip install 'paddle2onnx<2' (1.3 converts .pdmodel programs)."
        )
    if p2o_major < 2 and layout_kind == "pir":
        return (
            f"paddle2onnx {p2o_version} reads .pdmodel programs only, and this model is a PIR "
            ".json program: install paddle2onnx>=2 or export with --format legacy."
        )
    return None


def model_digest(layout: ModelLayout, converter: str) -> str:
    """SHA-256 of the program and parameter files plus the converter's name and version."""
    digest = hashlib.sha256(f"{converter};opset={OPSET}\n".encode())
    from ppinfer.errors import ModelFormatError
    from ppinfer.io.safe_io import check_regular_file

    for path in (layout.program, layout.params):
        check_regular_file(path, ModelFormatError)  # a FIFO would block open()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise ModelFormatError(f"Cannot read {path}: {exc.strerror or exc}.") from None
        digest.update(b"\0")
    return digest.hexdigest()


def onnx_model_path(
    layout: ModelLayout, cpu_threads: int = 1, cache_root: Path | None = None
) -> Path:
    """The ONNX file for ``layout``: from the cache, else converted, checked and cached."""
    from ppinfer.runtime.paddle_env import paddle_env

    p2o_version = package_version("paddle2onnx")
    problem = converter_problem(p2o_version, paddle_env().version, layout.kind)
    if problem:
        raise ConfigError(problem)
    cache = (cache_root or default_cache_dir() / "onnx") / model_digest(
        layout, f"paddle2onnx={p2o_version}"
    )[:32]
    target = cache / "model.onnx"
    if read_conversion(cache, p2o_version) is not None:
        return target
    try:
        _clear_for_conversion(cache)
        with tempfile.TemporaryDirectory(prefix=".convert-", dir=cache) as tmp:
            converted = _convert(layout, Path(tmp), p2o_version)
            diff = _validate(layout, converted, cpu_threads)
            os.replace(converted, target)
        written = target.stat()
        own.write_json(cache / "conversion.json", {
            "source": describe_source(layout), "paddle2onnx": p2o_version, "opset": OPSET,
            "max_abs_diff_vs_paddle": diff, "onnx_bytes": written.st_size,
            "onnx_mtime_ns": written.st_mtime_ns})
    except OSError as exc:  # PPINFER_HOME a file, read-only or full
        raise ConfigError(
            f"ppinfer's cache {cache_root or default_cache_dir()} cannot hold the ONNX "
            f"conversion ({exc.strerror or exc}): set PPINFER_HOME to a writable folder, or "
            "use --engine analysis."
        ) from None
    return target


def _path_text(value) -> bool:
    return isinstance(value, str) and len(value) <= 8192


_CONVERSION = own.record({
    "source": own.record({"program": _path_text, "params": _path_text, "kind": own.text}),
    "paddle2onnx": own.text, "opset": own.count,
    "max_abs_diff_vs_paddle": lambda v: own.finite(v, minimum=0.0),
    "onnx_bytes": own.count, "onnx_mtime_ns": lambda v: own.count(v, 1 << 63),
}, required={"paddle2onnx", "opset", "max_abs_diff_vs_paddle", "onnx_bytes", "onnx_mtime_ns"})


def read_conversion(cache: Path, p2o_version: str) -> dict | None:
    """The record of the conversion cached in ``cache``, or None (convert again) when there is
    none, when it is not the record this ppinfer writes (a file read back is untrusted), or
    when ``model.onnx`` is not the file it describes (another size or time: cut short,
    replaced, edited)."""
    doc = own.read_json(cache / "conversion.json")
    if not _CONVERSION(doc) or (doc["paddle2onnx"], doc["opset"]) != (p2o_version, OPSET):
        return None
    try:
        info = os.lstat(cache / "model.onnx")
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or (info.st_size, info.st_mtime_ns) != (
            doc["onnx_bytes"], doc["onnx_mtime_ns"]):
        return None
    return doc


def _clear_for_conversion(cache: Path) -> None:
    """``cache`` as a real folder: a file or a link in its place (it is ppinfer's own name in
    its own cache) is removed first. Raises OSError."""
    if cache.is_symlink() or (cache.exists() and not cache.is_dir()):
        cache.unlink()
    cache.mkdir(parents=True, exist_ok=True)


def describe_source(layout: ModelLayout) -> dict[str, str]:
    return {"program": str(layout.program), "params": str(layout.params), "kind": layout.kind}


def _convert(layout: ModelLayout, workdir: Path, p2o_version: str) -> Path:
    """Run paddle2onnx on ``layout`` into ``workdir``; its chatter goes to a log, shown on error."""
    program, params = layout.program, layout.params
    if layout.kind == "seed":  # paddle2onnx tells programs apart by suffix: give it one
        program, params = workdir / "inference.pdmodel", workdir / "inference.pdiparams"
        os.symlink(layout.program.resolve(), program)
        os.symlink(layout.params.resolve(), params)
    out = workdir / "model.onnx"
    kwargs = {"opset_version": OPSET, "enable_onnx_checker": True}
    if int(p2o_version.split(".")[0]) >= 2:
        # Not "polygraphy" (the default): it pip-installs packages at run time. ONNX Runtime
        # folds constants itself when it loads the model.
        kwargs["optimize_tool"] = "none"
    log = workdir / "paddle2onnx.log"
    error = None
    with output_to(log):
        try:
            import paddle2onnx

            paddle2onnx.export(str(program), str(params), save_file=str(out), **kwargs)
        except OSError as exc:
            if exc.errno in CACHE_WRITE_ERRORS:  # the cache is full or read-only: said so
                raise
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # paddle2onnx raises anything, or logs and returns
            error = f"{type(exc).__name__}: {exc}"
    if not out.is_file() or out.stat().st_size == 0:
        reason = _last_error_line(log) or error or "no output"
        raise ModelFormatError(
            f"paddle2onnx {p2o_version} could not convert the {layout.describe()} ({reason}): "
            "use --engine analysis for this model."
        )
    return out


def _sample_batch(layout: ModelLayout, shape: list[int]) -> np.ndarray:
    """The shipped photo and its mirror image, preprocessed as the model's card says; random
    noise only for a model no photo fits. Noise drives a network far from what it was trained
    on, into saturated scores where a correct conversion differs by 3e-4 (PP-LCNetV2; 1e-5 on
    photos), and a good conversion was refused."""
    from ppinfer.errors import PPInferError
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.preprocess import preprocess_image
    from ppinfer.pipeline.sample import sample_image_path

    noise = np.random.default_rng(0).standard_normal([2, *shape[1:]]).astype(np.float32)
    if shape[1] != 3:
        return noise
    try:
        source = resolve_source(model_file=str(layout.program), params_file=str(layout.params),
                                prefer=layout.ir)
        photo = preprocess_image(load_image(sample_image_path()), source.preprocess)
    except (PPInferError, TypeError, ValueError):
        return noise
    fixed = [d for d in shape[2:] if d > 1]
    if fixed and list(photo.shape[1:]) != list(shape[2:]):
        return noise
    return np.ascontiguousarray(np.stack([photo, photo[:, :, ::-1]]), dtype=np.float32)


def _validate(layout: ModelLayout, onnx_path: Path, cpu_threads: int) -> float:
    """Largest |score difference| between ONNX Runtime and Paddle Inference on a photo."""
    from ppinfer.config import RunConfig
    from ppinfer.engines.base import create_engine
    from ppinfer.modelfiles.source import ModelSource

    ort = _import_onnxruntime()
    session = ort.InferenceSession(str(onnx_path), session_options(ort, cpu_threads),
                                   providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in session.get_inputs()[0].shape]
    batch = _sample_batch(layout, shape)
    got = session.run(None, {session.get_inputs()[0].name: batch})[0]
    source = ModelSource(layout=layout, input_shape=tuple(batch.shape[1:]))
    paddle_engine = create_engine("analysis", source, RunConfig(device="cpu",
                                                                cpu_threads=cpu_threads))
    paddle_engine.ensure_built()
    expected = paddle_engine.execute(batch)
    diff = float(np.max(np.abs(got - expected)))
    if diff > VALIDATION_ATOL * max(1.0, float(np.max(np.abs(expected)))):
        raise ModelFormatError(
            f"The ONNX conversion of the {layout.describe()} differs from Paddle Inference by "
            f"{diff:.2e}: use --engine analysis, and report this with the model."
        )
    return diff


def _last_error_line(log: Path) -> str | None:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line.strip() for line in lines if "error" in line.lower() and line.strip()]
    return errors[-1][:200] if errors else None
