"""The levers ``analysis_levers.py`` measures: one named variant of the analysis predictor each.

A lever is what it changes against ppinfer's own configuration (``RunConfig`` defaults, the
``paddle.inference.Config`` calls of :meth:`ppinfer.config.RunConfig.inference_calls`):

- ``config``: RunConfig fields changed (ppinfer translates them, as for a user's option);
- ``add`` / ``drop``: Config calls appended after ppinfer's, or ppinfer's calls left out;
- ``env``: environment variables that must be set before Paddle (and its OpenMP) loads, so the
  lever runs in a child process of its own, with ONNX Runtime beside it in that process;
- ``warmup`` / ``warm_batch``: how the predictor is warmed before it is timed.

What the PIR oneDNN pass list holds on Paddle 3.3.1 (``kPirMkldnnPasses`` in
``paddle/fluid/inference/api/paddle_pass_builder.cc``; the predictor's log lists them):
depthwise_conv_onednn, squeeze_transpose, conv2d_bn / conv2d_bias_bn / conv2d_bias fusions
(and the conv2d_transpose and conv3d ones), conv_elementwise_add, conv_activation,
conv_concat_activation, the matmul/fc family, batch_norm_act, softplus_activation,
shuffle_channel_detect, elementwise_act, operator_scale/unsqueeze/reshape, onednn_placement;
then transfer_layout, common_subexpression_elimination, constant_folding (which evaluates the
batch-norm folding on the parameters), dead_code_elimination and inplace. Not in it, but
registered and usable through ``Config.enable_custom_passes``: ``identity_op_clean_pass``
(drops the inference ``dropout``, the one op ppinfer's exports keep between the pooling and the
classifier) and ``map_op_to_another_pass``. ``set_optimization_level`` below 2 skips the oneDNN
fusions; 2, 3 and 4 run the same list. ``switch_ir_optim(False)`` does not stop the PIR passes
on 3.3.1. Without oneDNN a PIR program gets ``kPirCpuPasses``: no fusion at all. The kernel
program that results for ppinfer's exports is fully fused (Lite0: 49 ``fused_conv2d`` with
batch norm, bias, relu6 and residual add folded in, then pool, flatten, dropout, fc, softmax;
MobileNetV3 adds 9 pools and 8 multiplies of its squeeze-excite blocks, which oneDNN has no
fusion for, on legacy programs either). Counted with ``ONEDNN_VERBOSE=1`` at batch 1, a PIR
program runs as many oneDNN primitives per batch as its legacy twin (Lite0: 63 both, 9 of them
same-layout copies of the residual input) or fewer (MobileNetV3: 95 against 111): where PIR is
slower, the difference is the executor's, which the ``executor`` levers weigh.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ppinfer.config import ConfigCall


@dataclass(frozen=True)
class Lever:
    name: str
    group: str  # reference | onednn | passes | pir | legacy | executor | threads | warmup
    what: str  # what it changes, one sentence
    config: dict = field(default_factory=dict)
    add: tuple[ConfigCall, ...] = ()
    drop: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    ir: str | None = None  # only for programs of this IR ("pir" or "legacy")
    warmup: int | None = None  # warm-up batches before timing; None: --warmup
    warm_batch: int | None = None  # batch size of the warm-up (None: the measured one)

    @property
    def own_process(self) -> bool:
        return bool(self.env)

    def applies(self, ir: str, batch: int) -> str | None:
        """Why this lever does not apply to a program of ``ir`` at ``batch`` (None: it does)."""
        if self.ir is not None and self.ir != ir:
            return f"only for {self.ir} programs"
        if self.warm_batch is not None and self.warm_batch == batch:
            return f"the measured batch is already {batch}"
        return None

    def describe(self) -> dict:
        return {"group": self.group, "what": self.what, "config": dict(self.config),
                "add": [repr(c) for c in self.add], "drop": list(self.drop),
                "env": dict(self.env), "ir": self.ir, "warmup": self.warmup,
                "warm_batch": self.warm_batch}


def _call(method: str, *args) -> ConfigCall:
    return ConfigCall(method, tuple(args))


BASELINE = Lever("baseline", "reference",
                 "exactly what ppinfer does: RunConfig defaults (oneDNN, cache of 10 shapes, IR "
                 "optimisation, memory optimisation on legacy programs), --threads threads")

IN_PROCESS = (
    BASELINE,
    Lever("onednn-off", "onednn",
          "disable_mkldnn: Paddle's own CPU kernels (on PIR programs also no fusion pass: "
          "kPirCpuPasses has none)", config={"mkldnn": False}),
    Lever("onednn-cache-unbounded", "onednn",
          "set_mkldnn_cache_capacity(0): oneDNN keeps primitives for every input shape "
          "instead of ppinfer's 10", config={"mkldnn_cache_capacity": 0}),
    Lever("onednn-cache-1", "onednn",
          "set_mkldnn_cache_capacity(1): one input shape cached",
          config={"mkldnn_cache_capacity": 1}),
    Lever("ir-optim-off", "passes",
          "switch_ir_optim(False): no fusion passes on legacy programs (on PIR programs 3.3.1 "
          "ignores it: every PIR pass still runs; set_optimization_level is PIR's switch)",
          config={"ir_optim": False}),
    Lever("pir-opt-level-1", "pir",
          "set_optimization_level(1): the PIR pass manager skips the oneDNN fusion list "
          "(constant folding and CSE still run)", add=(_call("set_optimization_level", 1),),
          ir="pir"),
    Lever("pir-opt-level-3", "pir",
          "set_optimization_level(3) (Paddle's default is 2; 3 and 4 ran the same passes on "
          "3.3.1)", add=(_call("set_optimization_level", 3),), ir="pir"),
    Lever("pir-identity-clean", "pir",
          "enable_custom_passes(['identity_op_clean_pass']): also drop identity ops (the "
          "inference dropout before the classifier), not in the PIR oneDNN list",
          add=(_call("enable_custom_passes", ["identity_op_clean_pass"], False),), ir="pir"),
    Lever("pir-map-op", "pir",
          "enable_custom_passes(['map_op_to_another_pass']): the GPU list's op mapping "
          "(e.g. depthwise_conv2d -> conv2d) run first",
          add=(_call("enable_custom_passes", ["map_op_to_another_pass"], False),), ir="pir"),
    Lever("legacy-as-pir", "legacy",
          "enable_new_ir(True) + enable_new_executor(True) on a .pdmodel: Paddle translates it "
          "to PIR and runs the PIR passes and executor (the file format kept apart from the "
          "IR; enable_new_ir alone fails on 3.3.1)",
          add=(_call("enable_new_ir", True), _call("enable_new_executor", True)), ir="legacy"),
    Lever("legacy-new-executor", "legacy",
          "enable_new_executor(True) on a .pdmodel: the legacy IR's passes, run by the new "
          "executor instead of the naive one", add=(_call("enable_new_executor", True),),
          ir="legacy"),
    Lever("warmup-1", "warmup",
          "one warm-up batch (the first run) before timing, instead of --warmup",
          warmup=1),
    Lever("warmup-20", "warmup", "twenty warm-up batches before timing", warmup=20),
    Lever("warm-at-batch-1", "warmup",
          "warm-up runs at batch 1 first (the predictor's first shape), then the measured "
          "batch: does the first-run shape matter?", warm_batch=1),
)

OWN_PROCESS = (
    # A child with ppinfer's configuration and no change: what the env levers compare with.
    Lever("env-control", "threads",
          "a child process with nothing changed (the reference for the env rows)",
          env={"PPINFER_LEVER_CHILD": "1"}),
    Lever("kmp-blocktime-0", "threads",
          "KMP_BLOCKTIME=0: Intel OpenMP workers sleep at once after a parallel region "
          "(default 200 ms of spinning)", env={"KMP_BLOCKTIME": "0"}),
    Lever("kmp-blocktime-1", "threads", "KMP_BLOCKTIME=1: spin 1 ms, then sleep (ppinfer's "
          "default since it was measured here; env-control has it too)",
          env={"KMP_BLOCKTIME": "1"}),
    Lever("kmp-blocktime-200", "threads", "KMP_BLOCKTIME=200: Intel OpenMP's own default "
          "(200 ms of spinning), which ppinfer replaced", env={"KMP_BLOCKTIME": "200"}),
    Lever("kmp-affinity-compact", "threads",
          "KMP_AFFINITY=granularity=fine,compact,1,0: OpenMP threads pinned to cores",
          env={"KMP_AFFINITY": "granularity=fine,compact,1,0"}),
    Lever("omp-wait-passive", "threads",
          "OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads yield the CPU",
          env={"OMP_WAIT_POLICY": "PASSIVE"}),
    Lever("omp-wait-active", "threads",
          "OMP_WAIT_POLICY=ACTIVE: idle OpenMP threads spin",
          env={"OMP_WAIT_POLICY": "ACTIVE"}),
    Lever("omp-num-threads", "threads",
          "OMP_NUM_THREADS=--threads as well as set_cpu_math_library_num_threads",
          env={"OMP_NUM_THREADS": "{threads}"}),
    Lever("omp-num-threads-only", "threads",
          "OMP_NUM_THREADS=--threads and no set_cpu_math_library_num_threads call (Paddle's "
          "default of 1 then applies, if it overrides the environment)",
          env={"OMP_NUM_THREADS": "{threads}"}, drop=("set_cpu_math_library_num_threads",)),
    Lever("onednn-isa-avx2", "onednn",
          "ONEDNN_MAX_CPU_ISA=AVX2: oneDNN's AVX2 kernels instead of its AVX-512 ones (their "
          "depthwise and small convolutions differ)", env={"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    Lever("executor-serial", "executor",
          "FLAGS_new_executor_serial_run=1: the new (PIR) executor runs ops in the calling "
          "thread instead of its work-queue threads", env={"FLAGS_new_executor_serial_run": "1"}),
)

LEVERS = {lever.name: lever for lever in IN_PROCESS + OWN_PROCESS}


def select(only: str | None) -> list[Lever]:
    """The levers named (or of the groups named) in ``only``; all by default. Baseline is
    always measured: every comparison needs it."""
    if not only:
        return list(LEVERS.values())
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    unknown = wanted - set(LEVERS) - {lever.group for lever in LEVERS.values()}
    if unknown:
        sys.exit(f"Unknown lever or group {', '.join(sorted(unknown))}: see --list.")
    chosen = [lv for lv in LEVERS.values() if lv.name in wanted or lv.group in wanted]
    if any(lv.own_process for lv in chosen):  # the env rows are read against env-control
        chosen = [LEVERS["env-control"]] + [lv for lv in chosen if lv.name != "env-control"]
    return [BASELINE] + [lv for lv in chosen if lv is not BASELINE]
