"""Where ``--engine auto`` keeps its choices, and how it reads them back.

``<cache>/auto/<model digest>/<precision>-b<batch>-t<threads>-<setup>.json`` holds one
measured choice; ``<cache>/auto/digests.json`` remembers each model's digest by its files'
path, size and modification time. Both are files ppinfer writes for itself, and both are
read back as untrusted (:mod:`ppinfer.io.own_files`): a file that is not exactly what the
writer gives, edited, cut short or planted (``[]``, ``{"rounds": Infinity}``, 200,000 nested
brackets, ``margin: NaN``, a digest of ``/etc``), is absent, and the caller measures or hashes
again and rewrites it. Nothing read here becomes a path unless it is 32 hex digits.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import re
from pathlib import Path

from ppinfer.config import PRECISIONS, RunConfig, default_cache_dir
from ppinfer.engines.auto_programs import label as _label_of
from ppinfer.io import own_files as own
from ppinfer.io.own_files import count, finite, list_of, optional, record, text

#: "ppinfer-auto/3": per-round figures, near_tie / margin / noise / rounds / stop, and the
#: program a candidate ran when the directory holds two (auto_programs.py). Files of another
#: schema (the one-second timings of /1, /2 without programs) are measured again, never read.
SCHEMA = "ppinfer-auto/3"
PROGRAMS = ("pir", "legacy")
DIGEST_DIGITS = 32
DIGESTS_MAX_ENTRIES = 2000  # models remembered in digests.json, the newest kept
DIGESTS_MAX_BYTES = 4 << 20
STATUSES = ("ok", "skipped", "disagrees", "failed")
STOPS = ("decided", "budget", "max_rounds", "single")


def cache_path(source, config: RunConfig, cache_root: Path | None = None) -> Path:
    """``<cache>/auto/<model digest>/<precision>-b<batch>-t<threads>-<setup>.json``."""
    layout = source.layout
    base = (cache_root or default_cache_dir()) / "auto"
    digest = model_key(layout, base) if layout.params is not None else (
        hashlib.sha256(str(layout.root.resolve()).encode()).hexdigest()[:DIGEST_DIGITS])
    name = (f"{config.precision}-b{config.batch_size}-t{config.cpu_threads}-"
            f"{setup_key(config)}.json")
    return base / digest / name


def model_key(layout, base: Path) -> str:
    """The SHA-256 (32 hex digits) of the program and parameter files, remembered in
    ``base/digests.json`` by path, size and modification time: hashing ResNet50_vd's 100 MB
    takes 0.5 s, a lookup none. The digest names a folder, so only 32 hex digits are taken
    from the file."""
    from ppinfer.engines.onnxruntime import model_digest

    stamp = ";".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                     for p in (layout.program, layout.params))
    index_path = base / "digests.json"
    index = read_digests(index_path)
    digest = index.get(stamp)
    if digest is None:
        digest = model_digest(layout, "auto")[:DIGEST_DIGITS]
        index[stamp] = digest
        for old in list(index)[:-DIGESTS_MAX_ENTRIES]:  # the oldest go first
            del index[old]
        with contextlib.suppress(OSError):  # a read-only cache: hashed again next time
            own.write_json(index_path, index)
    return digest


def read_digests(path: Path) -> dict[str, str]:
    """digests.json as {stamp: digest}; empty when missing or not exactly that."""
    doc = own.read_json(path, DIGESTS_MAX_BYTES)
    if not isinstance(doc, dict) or len(doc) > DIGESTS_MAX_ENTRIES:
        return {}
    # keys are stamps (a path may hold any character; they are only compared), values name
    # folders: 32 hex digits or the whole file is dropped
    if not all(isinstance(k, str) and len(k) <= 8192 and own.hex_digest(v, DIGEST_DIGITS)
               for k, v in doc.items()):
        return {}
    return doc


def setup_key(config: RunConfig) -> str:
    """A short digest of what else decides the figures: the CPU, ppinfer, Paddle, the engines'
    packages, oneDNN, IR optimisation."""
    from ppinfer import __version__
    from ppinfer.runtime.paddle_env import package_version, paddle_env

    env = paddle_env()
    parts = [env.cpu_model, str(env.cpu_count), __version__, env.version,
             str(config.mkldnn), str(config.ir_optim), str(config.mkldnn_cache_capacity)]
    parts += [f"{p}={package_version(p)}" for p in ("onnxruntime", "paddle2onnx", "openvino")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


# -- one choice's file -------------------------------------------------------------------------


def _engine_name(value) -> bool:
    """An engine's name as registries spell them: shown in rich tables, so no markup."""
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
                                                   value) is not None


def _label(value) -> bool:
    """A candidate's name in the choice: an engine, or ``engine:program``."""
    if not isinstance(value, str):
        return False
    engine, _, program = value.partition(":")
    return _engine_name(engine) and (not program or program in PROGRAMS)


def _timestamp(value) -> bool:
    if not text(value, 40):
        return False
    try:
        _dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_seconds = optional(lambda v: finite(v, minimum=0.0))
_CANDIDATE = record({
    "engine": _engine_name, "status": lambda v: v in STATUSES, "reason": optional(text),
    "images_per_s": _seconds, "ms_per_batch": _seconds, "build_s": _seconds,
    "max_abs_diff": _seconds, "warmup_runs": optional(count),
    "round_ms": optional(list_of(lambda v: finite(v, minimum=0.0))), "spin_ms": _seconds,
    "program": optional(lambda v: v in PROGRAMS),
}, required={"engine", "status"})
_CHOICE = record({
    "schema": lambda v: v == SCHEMA, "engine": _engine_name,
    "program": optional(lambda v: v in PROGRAMS),
    "precision": lambda v: v in PRECISIONS, "batch_size": lambda v: count(v, 1 << 16),
    "cpu_threads": lambda v: count(v, 1 << 16), "measured_at": _timestamp,
    "near_tie": lambda v: isinstance(v, bool), "tied": list_of(_label, 100),
    "unsure": list_of(_label, 100), "margin": optional(finite),
    "margin_over": optional(_label), "noise": _seconds, "rounds": count,
    "stop": optional(lambda v: v in STOPS), "other_cores": _seconds,
    "busy": lambda v: isinstance(v, bool), "timed_s": _seconds,
    "candidates": list_of(_CANDIDATE, 100),
}, required={"schema", "engine", "precision", "batch_size", "cpu_threads", "measured_at",
             "near_tie", "tied", "unsure", "margin", "margin_over", "noise", "rounds", "stop",
             "other_cores", "timed_s", "candidates"})


def read_choice(path: Path, config: RunConfig) -> dict | None:
    """The cached choice at ``path`` as the dict :func:`write_choice` wrote, or None when it
    is missing or is not such a dict for this ``config`` (schema, kinds, finite figures, an
    engine that ran and agreed): the caller measures again."""
    doc = own.read_json(path)
    if not _CHOICE(doc):
        return None
    names = [_label_of(c["engine"], c.get("program")) for c in doc["candidates"]]
    ran = {name for name, c in zip(names, doc["candidates"]) if c["status"] == "ok"}
    consistent = (_label_of(doc["engine"], doc.get("program")) in ran
                  and len(set(names)) == len(names)
                  and set(doc["tied"]) | set(doc["unsure"]) <= set(names)
                  and doc["margin_over"] in {None, *names}
                  and (doc["precision"], doc["batch_size"], doc["cpu_threads"])
                  == (config.precision, config.batch_size, int(config.cpu_threads)))
    return doc if consistent else None


def write_choice(path: Path, doc: dict) -> None:
    """Write a choice's dict (see :func:`read_choice`); OSError when the cache cannot hold it."""
    own.write_json(path, doc)
