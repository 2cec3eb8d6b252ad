"""``--engine auto``: the fastest installed engine for this model, machine, precision, batch
size and thread count, chosen by measuring, with parity against analysis checked.

:func:`choose_engine` is the plain entry point (the CLI and the Python API call it). On first
use it builds every engine that can run the model at the precision, checks its scores on the
shipped photo against ``analysis`` (fp32 for reduced precisions), times it for a moment on a
batch of that photo, and keeps the fastest that agrees; the figures are written to
``<cache>/auto/<model digest>/<precision>-b<batch>-t<threads>.json`` and reused while the model
files, the machine and the installed engines are the same. Peers such as PaddleX's
high-performance mode choose from a static table; this measures.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ppinfer.config import RunConfig, default_cache_dir
from ppinfer.errors import ConfigError, PPInferError
from ppinfer.source import ModelSource

REFERENCE = "analysis"
FP32_TOLERANCE = 1e-4
MEASURE_SECONDS = 1.0  # timed per engine, after a warm-up
ROUNDS = 3  # the timing is interleaved: engine A, B, C, A, B, C, ...
WARMUP = 2
SCHEMA = "ppinfer-auto/1"


@dataclass
class Candidate:
    engine: str
    status: str  # ok | skipped | disagrees | failed
    reason: str | None = None
    images_per_s: float | None = None
    ms_per_batch: float | None = None
    build_s: float | None = None
    max_abs_diff: float | None = None  # vs analysis (fp32 for a reduced precision)


@dataclass
class Choice:
    engine: str
    precision: str
    batch_size: int
    cpu_threads: int
    candidates: list[Candidate]
    measured_at: str
    cached: bool = False
    path: Path | None = None
    built: object | None = field(default=None, repr=False)  # the winner, built, when measured

    def describe(self) -> str:
        """One line: the choice and every candidate's throughput."""
        figures = ", ".join(
            f"{c.engine} {c.images_per_s:.1f}" if c.images_per_s is not None
            else f"{c.engine} {c.status}" for c in self.candidates)
        how = "cached" if self.cached else "measured"
        return (f"--engine auto chose {self.engine} ({self.precision}, batch {self.batch_size}, "
                f"{self.cpu_threads} threads; img/s: {figures}; {how} {self.measured_at}).")

    def to_json_dict(self) -> dict:
        return {"schema": SCHEMA, "engine": self.engine, "precision": self.precision,
                "batch_size": self.batch_size, "cpu_threads": self.cpu_threads,
                "measured_at": self.measured_at,
                "candidates": [asdict(c) for c in self.candidates]}


def choose_engine(source: ModelSource, config: RunConfig, *, refresh: bool = False,
                  cache_root: Path | None = None, seconds: float | None = None) -> Choice:
    """The fastest engine that agrees with analysis, from the cache or measured now
    (``seconds`` timed per engine, default :data:`MEASURE_SECONDS`)."""
    config = config.resolve()
    if source.layout is None or not source.layout.is_inference_model:
        raise ConfigError("--engine auto chooses among engines that run an exported model: "
                          "pass --model DIR (export a checkpoint first).")
    path = cache_path(source, config, cache_root)
    if not refresh:
        cached = _read(path)
        if cached is not None:
            return cached
    choice = measure_candidates(source, config, MEASURE_SECONDS if seconds is None else seconds)
    choice.path = path
    _write(path, choice)
    return choice


def candidate_engines(source: ModelSource, precision: str) -> list[tuple[str, str | None]]:
    """(engine, why it cannot take part or None) for every registered engine."""
    from ppinfer.engines import ENGINES
    from ppinfer.engines.base import load_plugins, precision_problem

    load_plugins()
    out = []
    for name in sorted(ENGINES, key=lambda n: (n != REFERENCE, n)):
        cls = ENGINES[name]
        reason = None
        if cls.needs_architecture:
            reason = "builds the architecture from a checkpoint (slow to start)"
        elif not cls.auto_candidate:
            reason = "not measured by auto (a checking engine, slower than analysis)"
        elif not cls.can_run(source):
            reason = f"cannot run a {source.layout.kind} model"
        else:
            reason = cls.missing() or precision_problem(cls, source, precision)
        out.append((name, reason))
    return out


def measure_candidates(source: ModelSource, config: RunConfig, seconds: float) -> Choice:
    """Build and parity-check every candidate, then time them in interleaved rounds (a
    machine that gets busier mid-way slows them alike), and keep the fastest built."""
    batch = _photo_batch(source, config.batch_size)
    reference = _reference_scores(source, config, batch)
    tolerance = FP32_TOLERANCE if config.precision == "fp32" else _reduced_tolerance()
    candidates, engines = [], {}
    for name, reason in candidate_engines(source, config.precision):
        if reason:
            candidates.append(Candidate(name, "skipped", reason))
            continue
        candidate, engine = _prepare_one(name, source, config, batch, reference, tolerance)
        candidates.append(candidate)
        if engine is not None:
            engines[name] = engine
    _time_rounds(engines, {c.engine: c for c in candidates}, batch, seconds)
    ok = [c for c in candidates if c.status == "ok"]
    if not ok:
        raise ConfigError("--engine auto found no engine that runs this model at "
                          f"{config.precision}: `ppinfer engines --model M` says why.")
    best = max(ok, key=lambda c: c.images_per_s)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return Choice(best.engine, config.precision, config.batch_size, int(config.cpu_threads),
                  candidates, now, built=engines.get(best.engine))


def _prepare_one(name, source, config, batch, reference, tolerance):
    """Build ``name`` and check its scores on ``batch`` against the reference's."""
    from ppinfer.engines import create_engine

    try:
        engine = create_engine(name, source, config)
        start = time.perf_counter()
        engine.ensure_built()
        build_s = time.perf_counter() - start
        probs = engine.probabilities(engine.execute(batch))
        diff = float(np.max(np.abs(probs - reference)))
        if diff > tolerance or not np.array_equal(probs.argmax(1), reference.argmax(1)):
            return Candidate(name, "disagrees", f"scores differ from {REFERENCE} by {diff:.2e}",
                             build_s=build_s, max_abs_diff=diff), None
        for _ in range(WARMUP):
            engine.execute(batch)
    except PPInferError as exc:
        return Candidate(name, "skipped", str(exc)), None
    except Exception as exc:  # an engine that breaks must not stop the others
        return Candidate(name, "failed", _one_line(exc)), None
    return Candidate(name, "ok", None, build_s=build_s, max_abs_diff=diff), engine


def _time_rounds(engines: dict, candidates: dict[str, Candidate], batch: np.ndarray,
                 seconds: float) -> None:
    """``seconds`` per engine in total, in :data:`ROUNDS` interleaved slices of at least one
    batch each."""
    runs = dict.fromkeys(engines, 0)
    wall = dict.fromkeys(engines, 0.0)
    for _ in range(ROUNDS):
        for name, engine in list(engines.items()):
            try:
                start = time.perf_counter()
                count = 0
                while count < 1 or time.perf_counter() - start < seconds / ROUNDS:
                    engine.execute(batch)
                    count += 1
                wall[name] += time.perf_counter() - start
                runs[name] += count
            except Exception as exc:  # one engine failing mid-way must not stop the others
                candidates[name].status, candidates[name].reason = "failed", _one_line(exc)
                del engines[name]
    for name in engines:
        c = candidates[name]
        c.images_per_s = runs[name] * len(batch) / wall[name]
        c.ms_per_batch = 1000.0 * wall[name] / runs[name]


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"{type(exc).__name__}: {first}"


def _reduced_tolerance() -> float:
    from ppinfer.precision_check import SCORE_TOLERANCE

    return SCORE_TOLERANCE


def _photo_batch(source: ModelSource, batch_size: int) -> np.ndarray:
    """The shipped photo, preprocessed for this model, repeated to the batch size."""
    from ppinfer.default_model import sample_image_path
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.preprocess import preprocess_image

    tensor = preprocess_image(load_image(str(sample_image_path())), source.preprocess)
    return np.ascontiguousarray(np.repeat(tensor[None], batch_size, axis=0), dtype=np.float32)


def _reference_scores(source: ModelSource, config: RunConfig, batch: np.ndarray) -> np.ndarray:
    from ppinfer.engines import create_engine

    engine = create_engine(REFERENCE, source, replace(config, precision="fp32"))
    engine.ensure_built()
    return engine.probabilities(engine.execute(batch))


# -- the cache ----------------------------------------------------------------------------------


def cache_path(source: ModelSource, config: RunConfig, cache_root: Path | None = None) -> Path:
    """``<cache>/auto/<model digest>/<precision>-b<batch>-t<threads>-<setup>.json``."""
    layout = source.layout
    base = (cache_root or default_cache_dir()) / "auto"
    digest = model_key(layout, base) if layout.params is not None else (
        hashlib.sha256(str(layout.root.resolve()).encode()).hexdigest()[:32])
    root = base / digest
    name = (f"{config.precision}-b{config.batch_size}-t{config.cpu_threads}-"
            f"{setup_key(config)}.json")
    return root / name


def model_key(layout, base: Path) -> str:
    """The SHA-256 (32 hex digits) of the program and parameter files, remembered in
    ``base/digests.json`` by path, size and modification time: hashing ResNet50_vd's 100 MB
    takes 0.5 s, a lookup none."""
    from ppinfer.engines.onnxruntime import model_digest

    stamp = ";".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                     for p in (layout.program, layout.params))
    index_path = base / "digests.json"
    index = {}
    try:
        if index_path.is_file() and index_path.stat().st_size < 4 << 20:
            index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    if not isinstance(index, dict):
        index = {}
    digest = index.get(stamp)
    if not (isinstance(digest, str) and len(digest) == 32):
        digest = model_digest(layout, "auto")[:32]
        index[stamp] = digest
        with contextlib.suppress(OSError):
            _write_json(index_path, index)
    return digest


def setup_key(config: RunConfig) -> str:
    """A short digest of what else decides the figures: the CPU, ppinfer, Paddle, the engines'
    packages, oneDNN, IR optimisation."""
    from ppinfer import __version__
    from ppinfer.paddle_env import package_version, paddle_env

    env = paddle_env()
    parts = [env.cpu_model, str(env.cpu_count), __version__, env.version,
             str(config.mkldnn), str(config.ir_optim), str(config.mkldnn_cache_capacity)]
    parts += [f"{p}={package_version(p)}" for p in ("onnxruntime", "paddle2onnx", "openvino")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _read(path: Path) -> Choice | None:
    try:
        if not path.is_file() or path.stat().st_size > 1 << 20:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("schema") != SCHEMA:
            return None
        candidates = [Candidate(**c) for c in doc["candidates"]]
        return Choice(doc["engine"], doc["precision"], doc["batch_size"], doc["cpu_threads"],
                      candidates, doc["measured_at"], cached=True, path=path)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # damaged: measure again


def _write(path: Path, choice: Choice) -> None:
    _write_json(path, choice.to_json_dict())


def _write_json(path: Path, doc: dict) -> None:
    """Write atomically: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
