"""``openvino``: the OpenVINO runtime, as an engine for ``predict`` and a peer in ``bench``.

OpenVINO's Paddle frontend reads a legacy program (``*.pdmodel``, or the seed's ``model`` +
``params`` through ``.pdmodel`` links) as it is. It cannot read a PIR ``.json`` program: that
one goes through the ONNX file the ``onnxruntime`` engine makes (converted by paddle2onnx,
checked against Paddle Inference, cached; see :func:`ppinfer.engines.onnxruntime.onnx_model_path`).

Precision is OpenVINO's inference-precision hint: ``f32`` for fp32, ``bf16`` for bf16. Its CPU
plugin runs bf16 only where it lists ``BF16`` among its capabilities (avx512_bf16 or AMX) and
otherwise silently runs f32, so bf16 is refused there rather than measured as something it is
not. Installed by the ``openvino`` extra (``pip install 'ppinfer[openvino]'``).
"""

from __future__ import annotations

import os
import queue
import tempfile
from pathlib import Path

import numpy as np

from ppinfer.engines.base import Engine, first_line, register_engine
from ppinfer.errors import ConfigError, ModelFormatError

INSTALL_HINT = ("The openvino engine needs OpenVINO: install it with "
                "pip install 'ppinfer[openvino]'.")
# int8: a quantized model's FakeQuantize ops run as int8; the hint is for the ops around them
_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


@register_engine("openvino")
class OpenVinoEngine(Engine):
    # openvino / onnx: the IR or ONNX file ``ppinfer quantize`` writes, read as it is
    layouts = frozenset({"pir", "legacy", "seed", "openvino", "onnx"})
    precisions = frozenset(_HINTS)
    quantized_as_int8 = True  # the CPU plugin runs FakeQuantize ops as int8 at any hint
    summary = ("OpenVINO runtime: .pdmodel read directly, .json through ONNX; fp32, bf16, "
               "int8 (quantized)")
    # An infer request runs one batch at a time ("Infer Request is busy"): each call takes an
    # idle one, and a caller that finds none makes another (as many as threads call at once).
    concurrent = True

    @classmethod
    def missing(cls) -> str | None:
        import importlib.util

        return INSTALL_HINT if importlib.util.find_spec("openvino") is None else None

    def build(self) -> None:
        if self.config.use_gpu:
            raise ConfigError("The openvino engine runs on the CPU here: pass --no-use-gpu.")
        ov = _import_openvino()
        core = ov.Core()
        if self.config.precision == "bf16":
            capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if "BF16" not in capabilities:
                raise ConfigError(
                    "OpenVINO runs bf16 only on CPUs with avx512_bf16 or AMX, and on this one "
                    "it would run f32 under the bf16 name: use --precision fp32 with openvino."
                )
        try:
            model = core.read_model(str(self.model_file()))
            self.compiled = core.compile_model(model, "CPU", compile_properties(self.config))
        except RuntimeError as exc:
            raise ModelFormatError(
                f"OpenVINO cannot run the {self.source.layout.describe()} "
                f"({openvino_reason(exc)}): use another --engine for this model."
            ) from None
        self._idle_requests: queue.SimpleQueue = queue.SimpleQueue()
        self._idle_requests.put(self.compiled.create_infer_request())
        self.precision_used = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))

    def model_file(self) -> Path:
        """What OpenVINO reads: the .pdmodel, an IR's .xml or an .onnx, a .pdmodel link to a
        seed's ``model``, or the cached ONNX conversion of a PIR program."""
        layout = self.source.layout
        if layout.kind in ("legacy", "openvino", "onnx"):
            return layout.program
        if layout.kind == "seed":  # the frontend knows Paddle programs by their suffix
            self._linkdir = tempfile.TemporaryDirectory(prefix="ppinfer-openvino-")
            linked = Path(self._linkdir.name)
            os.symlink(layout.program.resolve(), linked / "inference.pdmodel")
            os.symlink(layout.params.resolve(), linked / "inference.pdiparams")
            return linked / "inference.pdmodel"
        from ppinfer.engines.onnxruntime import onnx_model_path

        return onnx_model_path(layout, cpu_threads=self.config.cpu_threads)

    def execute(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        try:
            request = self._idle_requests.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            # OpenVINO reads the array in place and releases the GIL while it infers.
            request.infer({0: batch}, share_inputs=True)
            return request.get_output_tensor(0).data.copy()
        finally:
            self._idle_requests.put(request)


def openvino_reason(exc: BaseException) -> str:
    """OpenVINO's own reason, not the first line of its message (which names only the C++ file
    that threw): the operators it has no conversion rule for, else its last statement."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    rules = [line.lstrip("- ") for line in lines if "conversion rule" in line
             or "not supported" in line.lower()]
    if rules:
        return "; ".join(rules)[:300]
    told = [line for line in lines if not line.startswith(("Exception from", "Check '"))]
    return (told[-1] if told else first_line(exc))[:300]


def compile_properties(config) -> dict[str, object]:
    """OpenVINO CPU properties for a resolved RunConfig: one stream, its threads, precision."""
    return {
        "INFERENCE_PRECISION_HINT": _HINTS[config.precision],
        "INFERENCE_NUM_THREADS": int(config.cpu_threads),
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
    }


def _import_openvino():
    try:
        import openvino
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return openvino
