"""RunConfig: validation against the installed Paddle, and the Paddle Inference calls it makes.

GPU and TensorRT runs cannot happen here (no GPU can run Paddle on these machines), so their
paths are checked as the calls they make on ``paddle.inference.Config``, against a described
CUDA + TensorRT build. Unverified on a GPU.
"""

from __future__ import annotations

import dataclasses

import pytest

from ppinfer.config import ConfigCall, PrecisionType, RunConfig, apply_calls
from ppinfer.errors import ConfigError
from ppinfer.runtime.paddle_env import PaddleEnv, paddle_env

CPU_BF16 = PaddleEnv(version="3.3.1", pir_default=True, with_cuda=False, with_tensorrt=False,
                     tensorrt_version=None, with_onednn=True, gpu_count=0, cpu_model="test",
                     cpu_count=4, cpu_flags=frozenset({"avx512f", "avx512_bf16"}))
CPU_OLD = dataclasses.replace(CPU_BF16, cpu_flags=frozenset({"avx2"}))
GPU_TRT = dataclasses.replace(CPU_BF16, version="2.6.2", pir_default=False, with_cuda=True,
                              with_tensorrt=True, tensorrt_version="8.6.1", gpu_count=2)
GPU_NO_TRT = dataclasses.replace(GPU_TRT, with_tensorrt=False, tensorrt_version=None)
CUDA_NO_GPU = dataclasses.replace(GPU_TRT, gpu_count=0)


def methods(calls: list[ConfigCall]) -> list[str]:
    return [c.method for c in calls]


def call(calls: list[ConfigCall], method: str) -> ConfigCall:
    return next(c for c in calls if c.method == method)


def test_auto_device_is_cpu_without_cuda_and_gpu_with_it():
    assert RunConfig().resolve(CPU_BF16).device == "cpu"
    assert RunConfig().resolve(GPU_TRT).device == "gpu:0"
    assert RunConfig().resolve(CUDA_NO_GPU).device == "cpu"


def test_resolve_fills_threads_trt_batch_and_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PPINFER_HOME", str(tmp_path))
    cfg = RunConfig(batch_size=8).resolve(GPU_TRT)
    assert cfg.cpu_threads == 4 and cfg.trt_max_batch == 8 and cfg.use_tensorrt is True
    assert cfg.trt_cache_dir == str(tmp_path / "trt")


def test_a_trt_cache_that_cannot_be_made_is_one_sentence(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("a file where the cache folder should be")
    monkeypatch.setenv("PPINFER_HOME", str(home))
    with pytest.raises(ConfigError, match=(
            rf"ppinfer's cache {home} cannot hold TensorRT's engines \(Not a directory\): set "
            r"PPINFER_HOME to a writable folder, or pass --trt-cache-dir.")):
        RunConfig(device="gpu", use_tensorrt=True).resolve(GPU_TRT)
    given = home / "trt"
    with pytest.raises(ConfigError, match=rf"--trt-cache-dir {given} cannot hold TensorRT's"):
        RunConfig(device="gpu", use_tensorrt=True, trt_cache_dir=str(given)).resolve(GPU_TRT)
    assert RunConfig(device="cpu").resolve(GPU_TRT).device == "cpu"  # no TensorRT: no check


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        (RunConfig(device="gpu"), CPU_BF16, "is a CPU build: install paddlepaddle-gpu"),
        (RunConfig(device="gpu:3"), GPU_TRT, "GPU 3 was asked for but 2 GPU(s) are visible"),
        (RunConfig(device="gpu"), CUDA_NO_GPU, "no GPU is visible"),
        (RunConfig(device="tpu"), CPU_BF16, "Unknown device 'tpu'"),
        (RunConfig(device="cpu", use_tensorrt=True), GPU_TRT, "TensorRT needs a GPU"),
        (RunConfig(device="gpu", use_tensorrt=True), GPU_NO_TRT, "built without TensorRT"),
        (RunConfig(precision="fp16"), CPU_BF16, "fp16 needs a GPU"),
        (RunConfig(precision="bf16"), CPU_OLD, "no avx512_bf16"),
        (RunConfig(precision="bf16", mkldnn=False), CPU_BF16, "runs through oneDNN"),
        (RunConfig(precision="int8", device="gpu", use_tensorrt=False), GPU_TRT,
         "runs through TensorRT"),
        (RunConfig(precision="fp64"), CPU_BF16, "Unknown precision 'fp64'"),
        (RunConfig(batch_size=0), CPU_BF16, "batch-size must be at least 1"),
        (RunConfig(batch_size=8, trt_max_batch=4), GPU_TRT, "max batch (4) is smaller"),
    ],
)
def test_impossible_requests_fail_with_one_sentence(config, env, message):
    with pytest.raises(ConfigError) as info:
        config.resolve(env)
    text = str(info.value)
    assert message in text
    assert "\n" not in text and text.endswith(".")


def test_cpu_calls_bound_the_onednn_cache_and_set_threads():
    calls = RunConfig(cpu_threads=2, mkldnn_cache_capacity=7).resolve(CPU_BF16).inference_calls()
    assert methods(calls)[:2] == ["disable_glog_info", "switch_ir_optim"]
    assert call(calls, "set_cpu_math_library_num_threads").args == (2,)
    assert call(calls, "set_mkldnn_cache_capacity").args == (7,)
    assert "enable_use_gpu" not in methods(calls)


def test_cpu_bf16_enables_onednn_bfloat16_and_no_mkldnn_disables_it():
    assert "enable_mkldnn_bfloat16" in methods(
        RunConfig(precision="bf16").resolve(CPU_BF16).inference_calls())
    plain = methods(RunConfig(mkldnn=False).resolve(CPU_BF16).inference_calls())
    assert "disable_mkldnn" in plain and "enable_mkldnn" not in plain


def test_memory_optim_is_skipped_for_pir_programs():
    cfg = RunConfig().resolve(CPU_BF16)
    assert "enable_memory_optim" in methods(cfg.inference_calls(ir="legacy"))
    assert "enable_memory_optim" not in methods(cfg.inference_calls(ir="pir"))


def test_gpu_tensorrt_calls_order_precision_dynamic_batch_and_engine_cache(tmp_path):
    cfg = RunConfig(device="gpu:1", gpu_mem=4000, precision="fp16", batch_size=4, trt_max_batch=16,
                    trt_cache_dir=str(tmp_path)).resolve(GPU_TRT)
    calls = cfg.inference_calls("x", (3, 224, 224))
    names = methods(calls)
    assert names.index("enable_use_gpu") < names.index("enable_tensorrt_engine")
    assert call(calls, "enable_use_gpu").args == (4000, 1)
    trt = call(calls, "enable_tensorrt_engine").kwargs
    assert trt["precision_mode"] == PrecisionType("Half")
    assert trt["max_batch_size"] == 16 and trt["use_static"] is True
    assert call(calls, "set_optim_cache_dir").args == (str(tmp_path),)
    lo, hi, opt = call(calls, "set_trt_dynamic_shape_info").args
    assert lo == {"x": [1, 3, 224, 224]} and hi == {"x": [16, 3, 224, 224]}
    assert opt == {"x": [4, 3, 224, 224]}
    assert "disable_gpu" not in names and "enable_mkldnn" not in names


def test_gpu_without_tensorrt_uses_half_precision_on_the_gpu_call():
    calls = RunConfig(device="gpu", precision="fp16", use_tensorrt=False).resolve(
        GPU_TRT).inference_calls()
    assert call(calls, "enable_use_gpu").args == (8000, 0, PrecisionType("Half"))
    assert "enable_tensorrt_engine" not in methods(calls)


def test_cpu_calls_apply_to_a_real_paddle_inference_config():
    from paddle import inference

    cfg = RunConfig(device="cpu", cpu_threads=2, ir_optim=False).resolve()
    real = apply_calls(inference.Config(), cfg.inference_calls())
    assert real.cpu_math_library_num_threads() == 2
    assert real.ir_optim() is False
    assert real.use_gpu() is False
    assert real.mkldnn_enabled() is paddle_env().with_onednn


@pytest.mark.skipif(not paddle_env().gpu_count, reason="needs a CUDA GPU")
def test_gpu_calls_apply_to_a_real_paddle_inference_config():
    from paddle import inference

    cfg = RunConfig(device="gpu:0", gpu_mem=1000, use_tensorrt=False).resolve()
    real = apply_calls(inference.Config(), cfg.inference_calls())
    assert real.use_gpu() and real.gpu_device_id() == 0
    assert real.memory_pool_init_size_mb() == 1000
