"""Paddle's C++ extension on its own: Paddle Inference without ``import paddle``.

``import paddle`` takes about a second (it imports ``paddle.distributed``, the dygraph API,
setuptools, ...), most of a cold ``ppinfer predict``. Predicting needs none of that: every
class Paddle Inference has (``AnalysisConfig``, ``create_predictor``, the tensors) lives in the
extension module ``paddle/base/libpaddle.so``, which loads in about a quarter of it. When Paddle
is not imported yet, :func:`paddle_core` loads that module alone, under the name
``paddle.base.core`` gives it, and makes the start-up calls ``import paddle`` would make (flags
from ``FLAGS_*`` environment variables, ``OMP_NUM_THREADS`` defaulting to 1, device and kernel
registries). A later ``import paddle`` (export, the executor engines) is handed that same module
object (:class:`_HandOver`) and proceeds as usual.

Only CPU builds on Linux are loaded this way: GPU, ROCm and XPU builds load their libraries
from Python first, so they are imported whole, as is any Paddle whose files do not look as
expected. ``PPINFER_PADDLE_IMPORT=full`` turns the shortcut off.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ppinfer.runtime.paddle_import import before_paddle_loads

EXTENSION = "paddle.base.libpaddle"
VERSION_FILE_MAX_BYTES = 64 * 1024
_NOT_BUILT_WITH = {"False", "None", "", "0"}


@dataclass(frozen=True)
class PaddleCore:
    module: object  # paddle.base.core, or libpaddle loaded alone
    version: str
    whole: bool  # True when ``import paddle`` ran


def paddle_core() -> PaddleCore:
    """Paddle's core module and version; Paddle itself is imported only where it must be."""
    paddle = sys.modules.get("paddle")
    if paddle is not None and hasattr(paddle, "__version__"):
        return _whole(paddle)
    alone = _load_alone()
    if alone is not None:
        return alone
    from ppinfer.runtime.paddle_import import import_paddle

    return _whole(import_paddle())


def _whole(paddle) -> PaddleCore:
    from ppinfer.runtime.paddle_import import check_paddlepaddle

    check_paddlepaddle(paddle)
    core = paddle.base.core if hasattr(paddle, "base") else paddle.fluid.core
    return PaddleCore(core, paddle.__version__, whole=True)


@functools.lru_cache(maxsize=1)
def _load_alone() -> PaddleCore | None:
    """libpaddle loaded and started as ``import paddle`` would, or None where that is unsafe."""
    how = os.environ.get("PPINFER_PADDLE_IMPORT", "").strip().lower()
    if how not in ("", "auto", "full"):
        from ppinfer.errors import ConfigError

        raise ConfigError(f"PPINFER_PADDLE_IMPORT={how!r} is not one of auto, full.")
    if how == "full":
        return None
    if not sys.platform.startswith("linux"):
        return None
    spec = importlib.util.find_spec("paddle")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    build = _build_facts(package / "version" / "__init__.py")
    extension = package / "base" / "libpaddle.so"
    if build is None or not _loadable_alone(build) or not extension.is_file():
        return None
    # As `import paddle` does: Paddle's oneDNN kernels run one OpenMP thread unless told more.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    before_paddle_loads()
    from ppinfer.runtime.interrupts import deferred_interrupts

    loader = importlib.machinery.ExtensionFileLoader(EXTENSION, str(extension))
    module_spec = importlib.util.spec_from_file_location(EXTENSION, extension, loader=loader)
    try:
        with deferred_interrupts():
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[EXTENSION] = module
            loader.exec_module(module)
            _start(module)
            _HandOver.install(module, extension)  # only a started module is handed over
    except Exception:  # whatever went wrong, `import paddle` is the documented way: fall back
        return None
    finally:
        # Not left in sys.modules: a later `import paddle` must import the name itself so that
        # it becomes an attribute of `paddle.base`; _HandOver gives it this module object.
        sys.modules.pop(EXTENSION, None)
    return PaddleCore(module, build["full_version"], whole=False)


class _HandOver(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Hands the extension module loaded alone to the next ``import paddle``, once.

    Without it that import would not get this module object but a copy: libpaddle is a
    single-phase extension module, which Python loads once and afterwards re-creates as a new
    module filled from the dict it saved at that load (``PyModuleDef.m_base.m_copy``). The copy
    carries no module definition, and it replaces the original in the interpreter's list of
    extension modules; at exit Python drops each saved dict through the definition of the
    module in that list, so it never drops libpaddle's. That dict holds ``_cleanup``, the
    capsule whose destructor empties Paddle's ScopePool (every ``paddle.static.Scope()``, the
    only owner of their tensors) during Python's own shutdown. Never dropped, the pool is
    emptied by its C++ static destructor instead, after the host-memory statistics registries
    (``phi::ThreadDataRegistry<HostMemoryStat*>``, built at the first allocation, so destroyed
    first) that freeing each tensor updates: a use after free, which glibc reports as
    ``corrupted double-linked list`` / ``free(): corrupted unsorted chunks`` (exit 134 or
    139) or, as often, lets pass silently. Any process that loaded the core alone, then
    imported paddle and built a static program (the executor engines, export) was exposed,
    failed builds (a checkpoint that does not fit) most visibly. Handed this module, the
    import leaves the list as a whole ``import paddle`` does, and Paddle's capsule runs.
    """

    def __init__(self, module, extension: Path) -> None:
        self.module, self.directory = module, extension.parent
        self.spec = module.__spec__

    @classmethod
    def install(cls, module, extension: Path) -> None:
        sys.meta_path.insert(0, cls(module, extension))

    def find_spec(self, fullname, path=None, target=None):
        if fullname != EXTENSION or not any(_same_dir(p, self.directory) for p in path or ()):
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # once: the module is in sys.modules from now on
        return importlib.machinery.ModuleSpec(EXTENSION, self, origin=self.spec.origin)

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        module.__spec__ = self.spec  # as the extension loader left it: initialised already


def _same_dir(entry, directory: Path) -> bool:
    try:
        return Path(entry).resolve() == directory.resolve()
    except (OSError, TypeError, ValueError):
        return False


def _loadable_alone(build: dict[str, str]) -> bool:
    """True for a CPU build: GPU, ROCm and XPU builds preload their libraries in Python."""
    accelerators = ("cuda_version", "hip_version", "xpu_xre_version")
    return all(build.get(name, "") in _NOT_BUILT_WITH for name in accelerators)


def _build_facts(path: Path) -> dict[str, str] | None:
    """The ``name = 'value'`` lines of Paddle's generated ``paddle/version/__init__.py``."""
    from ppinfer.errors import PPInferError
    from ppinfer.io.safe_io import read_regular_file

    try:
        data = read_regular_file(path, VERSION_FILE_MAX_BYTES, PPInferError)
    except PPInferError:
        return None
    text = data.decode("utf-8", "replace")
    facts = dict(re.findall(r"^(\w+)\s*=\s*'?([^'\n]*?)'?\s*$", text, flags=re.MULTILINE))
    version = facts.get("full_version", "")
    if not re.fullmatch(r"\d+\.\d+\.\d+\S*", version):
        return None
    return facts


def _start(core) -> None:
    """The C++ start-up ``paddle/base/__init__.py`` makes: flags from the environment, logging,
    device and kernel registries. ``import paddle`` later repeats them harmlessly."""
    registry = core.globals()  # pybind: iterable by .keys() only
    names = [key[len("FLAGS_"):] for key in registry.keys() if key.startswith("FLAGS_")]  # noqa: SIM118
    core.init_gflags(["--tryfromenv=" + ",".join(names)])
    core.init_glog(sys.argv[0] if sys.argv and sys.argv[0] else "ppinfer")
    core.init_memory_method()
    core.init_devices()
    core.init_tensor_operants()
    core.init_default_kernel_signatures()
